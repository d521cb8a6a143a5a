"""The systems under test, each started fresh (empty index and storage) on free loopback ports
and stopped with everything it created (process group, database, bucket, folder).

openpacs-*: `python -m openpacs serve --config openpacs.toml`; orthanc-*: Debian's Orthanc with
a JSON configuration; storescp: DCMTK's storescp, the write-to-disk floor; pynetdicom: a bare
pynetdicom storage SCP in one process, the ceiling of openpacs's DICOM library (both ingest only).
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import dimse, services
from bench.procs import (
    HOST,
    Child,
    child_environ,
    cpu_seconds,
    dcmtk_env,
    free_port,
    port_open,
    rss_mb,
)

ORTHANC = "/usr/sbin/Orthanc"
ORTHANC_PLUGINS = Path("/usr/share/orthanc/plugins")
START_TIMEOUT = 60.0
SYSTEMS = (
    "openpacs-sqlite",
    "openpacs-postgresql",
    "openpacs-pg-s3",
    "openpacs-pg-pgblobs",
    "orthanc-sqlite",
    "orthanc-postgresql",
    "orthanc-pg-pgblobs",
    "storescp",
    "pynetdicom",
)
LABELS = {
    "openpacs-pg-s3": "openpacs-pg-s3 (S3 emulated by moto)",
    "openpacs-pg-pgblobs": "openpacs-pg-pgblobs (images in the PostgreSQL index database)",
    "orthanc-pg-pgblobs": "orthanc-pg-pgblobs (PostgreSQL plugin, EnableStorage: true)",
}
INGEST_ONLY = {"storescp", "pynetdicom"}
_MOTO_LOCK = threading.Lock()


@dataclass
class Context:
    """What every start needs: a scratch folder, the log folder, the C-MOVE destination."""

    work: Path
    logs: Path
    move_aet: str
    move_port: int
    openpacs_log_level: str = "INFO"
    moto: services.MotoServer | None = None
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def s3(self) -> services.MotoServer:
        with _MOTO_LOCK:
            if self.moto is None:
                self.moto = services.MotoServer(self.logs)
            return self.moto


@dataclass
class Running:
    name: str
    aet: str
    port: int
    child: Child
    folder: Path
    http_port: int | None = None
    http_login: tuple[str, str] | None = None
    """User and password for the HTTP service (openpacs authenticates every request)."""
    config: dict[str, Any] = field(default_factory=dict)
    count: Callable[[], int] = lambda: -1
    stop_grace: float = 10.0
    stopped: bool = False
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.child.pid

    def rss_mb(self) -> float:
        return rss_mb(self.child.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.child.pid)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        try:
            self.child.stop(grace=self.stop_grace)
        finally:
            _clean(self.cleanups)
            shutil.rmtree(self.folder, ignore_errors=True)


def _clean(cleanups: list[Callable[[], None]]) -> None:
    """Run every cleanup, newest first; a failing one is reported and does not stop the rest."""
    for cleanup in reversed(cleanups):
        try:
            cleanup()
        except Exception as exc:
            print(f"warning: cleanup {cleanup!r} failed: {exc}", file=sys.stderr)


# What each system needs from Debian (scripts/bench installs them all).
_NEEDS: dict[str, list[tuple[Path, str]]] = {
    "orthanc-sqlite": [
        (Path(ORTHANC), "orthanc"),
        (ORTHANC_PLUGINS / "libOrthancDicomWeb.so", "orthanc-dicomweb"),
    ],
    "storescp": [(Path("/usr/bin/storescp"), "dcmtk")],
}
_NEEDS["orthanc-postgresql"] = [
    *_NEEDS["orthanc-sqlite"],
    (ORTHANC_PLUGINS / "libOrthancPostgreSQLIndex.so", "orthanc-postgresql"),
]
_NEEDS["orthanc-pg-pgblobs"] = [
    *_NEEDS["orthanc-postgresql"],
    (ORTHANC_PLUGINS / "libOrthancPostgreSQLStorage.so", "orthanc-postgresql"),
]
_CLIENTS = [
    (Path("/usr/bin") / tool, "dcmtk") for tool in ("storescu", "findscu", "movescu", "getscu")
]


def missing_packages(names: list[str]) -> list[str]:
    """Debian packages the chosen systems (and the DCMTK clients) need but are not installed."""
    needed = _CLIENTS + [need for name in names for need in _NEEDS.get(name, [])]
    return sorted({package for path, package in needed if not path.exists()})


def start(name: str, ctx: Context) -> Running:
    """Start system `name` fresh; on failure nothing of it is left running."""
    folder = ctx.work / f"{name}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    starter = _openpacs if name.startswith("openpacs") else _orthanc
    if name == "storescp":
        starter = _storescp
    if name == "pynetdicom":
        starter = _pynetdicom
    cleanups: list[Callable[[], None]] = []
    try:
        running = starter(name, ctx, folder, cleanups)
    except BaseException:
        _clean(cleanups)
        shutil.rmtree(folder, ignore_errors=True)
        raise
    running.cleanups = cleanups
    ctx.configs.setdefault(name, running.config)
    return running


def _guarded(child: Child, cleanups: list[Callable[[], None]]) -> Child:
    cleanups.append(child.stop)
    return child


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def write_openpacs_config(
    folder: Path, ctx: Context, *, port: int, http_port: int, db_url: str, storage: dict[str, Any]
) -> Path:
    """openpacs.toml in `folder`: DICOM and HTTP ports, index, store, the C-MOVE destination."""
    sections: dict[str, dict[str, Any]] = {
        "dicom": {"aet": "OPENPACS", "port": port},
        "http": {"host": HOST, "port": http_port},
        "database": {"url": db_url},
        "storage": storage,
        "auth": {"admin_user": BENCH_USER, "admin_password_file": str(_password_file(folder))},
    }
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
    lines += ["[[dicom.remotes]]", f'aet = "{ctx.move_aet}"', f'host = "{HOST}"']
    lines.append(f"port = {ctx.move_port}")
    config = folder / "openpacs.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


BENCH_USER = "bench"
_BENCH_PASSWORD = "bench-password-" + uuid.uuid4().hex  # a throw-away archive's admin


def _password_file(folder: Path) -> Path:
    path = folder / "admin-password"
    path.write_text(_BENCH_PASSWORD, encoding="utf-8")
    path.chmod(0o600)
    return path


def serve_openpacs(
    name: str,
    ctx: Context,
    folder: Path,
    config: Path,
    *,
    db_url: str,
    env: dict[str, str] | None = None,
) -> Running:
    """`python -m openpacs serve --config CONFIG`, ready once it answers C-ECHO."""
    from openpacs.config import load_settings

    settings = load_settings(config, environ={})
    port, http_port = settings.dicom.port, settings.http.port
    command = [sys.executable, "-m", "openpacs", "serve", "--config", str(config)]
    command += ["--log-level", ctx.openpacs_log_level, "--grace", "5"]
    child = Child(name, command, ctx.logs, env=env or child_environ(), cwd=folder)
    try:
        child.wait_ready(lambda: dimse.echo(port, "OPENPACS"), START_TIMEOUT, "C-ECHO answer")
    except BaseException:
        child.stop()
        raise
    return Running(
        name,
        "OPENPACS",
        port,
        child,
        folder,
        http_port=http_port,
        http_login=(BENCH_USER, _BENCH_PASSWORD),
        config={"toml": config.read_text(), "log_level": ctx.openpacs_log_level},
        count=lambda: services.count_rows(db_url, "instances"),
    )


def _openpacs(name: str, ctx: Context, folder: Path, cleanups: list[Callable[[], None]]) -> Running:
    db_url = f"sqlite:///{folder / 'index.db'}"
    storage: dict[str, Any] = {"url": str(folder / "blobs")}
    env = child_environ()
    if name in ("openpacs-postgresql", "openpacs-pg-s3", "openpacs-pg-pgblobs"):
        database = services.create_database("bench_openpacs")
        cleanups.append(lambda: services.drop_database(database))
        db_url = services.database_url(database)
    if name == "openpacs-pg-s3":
        moto = ctx.s3()
        storage = {"url": f"s3://{moto.make_bucket()}/archive", "s3_endpoint": moto.endpoint}
        storage["s3_region"] = moto.region
        cleanups.append(moto.reset)
        env.update(moto.environment)
    if name == "openpacs-pg-pgblobs":
        storage = {"url": "postgresql"}
    config = write_openpacs_config(
        folder, ctx, port=free_port(), http_port=free_port(), db_url=db_url, storage=storage
    )
    return serve_openpacs(name, ctx, folder, config, db_url=db_url, env=env)


def orthanc_get(http_port: int, path: str, timeout: float = 10.0) -> Any:
    with urllib.request.urlopen(f"http://{HOST}:{http_port}{path}", timeout=timeout) as response:
        return json.loads(response.read())


def _orthanc_ready(http_port: int, port: int) -> bool:
    try:
        orthanc_get(http_port, "/system", timeout=2)
    except (OSError, ValueError):
        return False
    return dimse.echo(port, "ORTHANC")


def _orthanc(name: str, ctx: Context, folder: Path, cleanups: list[Callable[[], None]]) -> Running:
    port, http_port = free_port(), free_port()
    plugins = [str(ORTHANC_PLUGINS / "libOrthancDicomWeb.so")]
    config: dict[str, Any] = {
        "Name": name,
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "DicomAet": "ORTHANC",
        "DicomPort": port,
        "HttpPort": http_port,
        "AuthenticationEnabled": False,
        "RemoteAccessAllowed": False,
        "StorageCompression": False,
        "SaveJobs": False,
        "DicomAlwaysAllowFind": True,  # the harness's AETs are not registered modalities
        "DicomAlwaysAllowMove": True,
        "DicomAlwaysAllowGet": True,
        # default 4: associations beyond it wait for a thread, and the benchmark holds up to
        # fifty at once (openpacs serves max_associations = 100 per worker by default)
        "DicomThreadsCount": 64,
        "DicomModalities": {"dest": [ctx.move_aet, HOST, ctx.move_port]},
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "Plugins": plugins,
    }
    if name in ("orthanc-postgresql", "orthanc-pg-pgblobs"):
        database = services.create_database("bench_orthanc")
        cleanups.append(lambda: services.drop_database(database))
        params = services.database_params()
        plugins.append(str(ORTHANC_PLUGINS / "libOrthancPostgreSQLIndex.so"))
        if name == "orthanc-pg-pgblobs":
            plugins.append(str(ORTHANC_PLUGINS / "libOrthancPostgreSQLStorage.so"))
        config["PostgreSQL"] = {
            "EnableIndex": True,
            "EnableStorage": name == "orthanc-pg-pgblobs",
            "Host": params["host"],
            "Port": params["port"],
            "Database": database,
            "Username": params["user"],
            "Password": params["password"],
            "Lock": False,
        }
    path = folder / "orthanc.json"
    path.write_text(json.dumps(config, indent=1))
    # Orthanc's DICOM sockets are DCMTK's: without TCP_NODELAY they wait on delayed ACKs
    command = [ORTHANC, str(path)]
    child = _guarded(Child(name, command, ctx.logs, env=dcmtk_env(), cwd=folder), cleanups)
    child.wait_ready(lambda: _orthanc_ready(http_port, port), START_TIMEOUT, "REST /system")
    cleanups.remove(child.stop)
    return Running(
        name,
        "ORTHANC",
        port,
        child,
        folder,
        http_port=http_port,
        config=config,
        count=lambda: int(orthanc_get(http_port, "/statistics")["CountInstances"]),
        stop_grace=1.0,  # Orthanc takes ~3 s to stop its servers; its data is thrown away
    )


def storescp_command(aet: str, port: int, out: Path) -> list[str]:
    """storescp forking one process per association, writing the received bytes as they are."""
    return [dimse.tool("storescp"), "--fork", "+B", "-dhl", "-aet", aet, "-od", str(out), str(port)]


def count_files(folder: Path) -> int:
    return sum(1 for path in folder.rglob("*") if path.is_file())


def _storescp(name: str, ctx: Context, folder: Path, cleanups: list[Callable[[], None]]) -> Running:
    port = free_port()
    out = folder / "received"
    out.mkdir()
    command = storescp_command("STORESCP", port, out)
    child = _guarded(Child(name, command, ctx.logs, env=dcmtk_env()), cleanups)
    child.wait_ready(lambda: port_open(port), START_TIMEOUT, "listening port")
    cleanups.remove(child.stop)
    config = {"command": command}
    counter = lambda: count_files(out)  # noqa: E731
    return Running(name, "STORESCP", port, child, folder, config=config, count=counter)


def _pynetdicom(
    name: str, ctx: Context, folder: Path, cleanups: list[Callable[[], None]]
) -> Running:
    port = free_port()
    out = folder / "received"
    spool = folder / "spool"  # beside `out`, so a rename is all a C-STORE costs
    out.mkdir()
    spool.mkdir()
    command = [sys.executable, "-m", "bench.pynetdicom_scp", str(port), str(out)]
    env = child_environ({"TMPDIR": str(spool)})
    child = _guarded(Child(name, command, ctx.logs, env=env), cleanups)
    child.wait_ready(lambda: dimse.echo(port, "PYNETDICOM"), START_TIMEOUT, "C-ECHO answer")
    cleanups.remove(child.stop)
    config = {"command": command}
    counter = lambda: count_files(out)  # noqa: E731
    return Running(name, "PYNETDICOM", port, child, folder, config=config, count=counter)
