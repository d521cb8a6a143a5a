"""The container image, built from deploy/Dockerfile and run (issue 16, item 1).

The base is Debian's release made by mmdebstrap (deploy/image/make-base.sh: no registry is
needed); podman builds the Dockerfile with chroot isolation; buildah runs what was built, as
the image's own user, with the host's loopback network. openpacs then serves DICOM and HTTP
from the image's file system: a study is stored, found and retrieved through it.

This is a separate step (scripts/test-image), not part of scripts/test: the first build on a
new machine takes minutes (the base, then the dependencies from PyPI), so CI runs it beside
the suite rather than in one of its workers.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import corpus, scu
from tests.support.process import free_port

ROOT = Path(__file__).resolve().parents[2]
TAG = "localhost/openpacs:test"
SIZE_LIMIT = 350 * 1000 * 1000
TOOLS = ("podman", "buildah", "mmdebstrap")

# The first test waits for the base and the build (two minutes on a new machine, about four
# beside the suite): a bound well above that, not the suite's 300 s.
pytestmark = pytest.mark.timeout(1200)


@functools.cache
def _storage() -> list[str]:
    """The store and storage driver the image scripts use (deploy/image/podman.sh)."""
    result = subprocess.run(["bash", "deploy/image/podman.sh"], cwd=ROOT, capture_output=True,
                            text=True, timeout=30, check=True)  # fmt: skip
    return result.stdout.splitlines()


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *_storage(), "--cgroup-manager", "cgroupfs", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def buildah(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["buildah", *_storage(), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


@dataclass(frozen=True)
class Built:
    image: str
    base_seconds: float
    build_seconds: float
    size: int
    inspected: dict[str, Any]


@pytest.fixture(scope="module")
def built(request: pytest.FixtureRequest) -> Built:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (scripts/test-image installs them)")
    started = time.monotonic()
    base = subprocess.run(["deploy/image/make-base.sh"], cwd=ROOT, capture_output=True,
                          text=True, timeout=1200, check=False)  # fmt: skip
    assert base.returncode == 0, base.stderr[-3000:]
    based = time.monotonic()
    # this machine's trust store, for pip behind a TLS-inspecting proxy (a build secret)
    bundle = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    # The docker format: the OCI image configuration has no HEALTHCHECK (podman drops it).
    result = podman(
        "build", "--isolation", "chroot", "--layers", "--format", "docker",
        "--file", "deploy/Dockerfile",
        "--build-arg", f"BASE_IMAGE={base.stdout.strip()}", "--build-arg", "VERSION=test",
        "--secret", f"id=ca_bundle,src={bundle}", "--tag", TAG, str(ROOT), timeout=1800,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    done = time.monotonic()
    (inspected,) = json.loads(podman("image", "inspect", TAG).stdout)
    built = Built(TAG, based - started, done - based, int(inspected["Size"]), inspected)
    # The figures issue 16 asks for, in the run's output whatever pytest captures.
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(
            f"\nimage {TAG}: {built.size / 1e6:.0f} MB; base {built.base_seconds:.0f} s, "
            f"build {built.build_seconds:.0f} s ({_storage()[-1]} storage)",
            flush=True,
        )
    return built


@pytest.fixture(scope="module")
def container(built: Built) -> Iterator[str]:
    made = buildah("from", "--pull=never", built.image)
    assert made.returncode == 0, made.stderr
    name = made.stdout.strip()
    try:
        yield name
    finally:
        buildah("rm", name)


def run_in(container: str, *command: str, volumes: tuple[str, ...] = ()) -> list[str]:
    """`buildah run` with chroot isolation and the host's network, as the image's user."""
    options = ["run", "--isolation", "chroot", "--network", "host"]
    for volume in volumes:
        options += ["--volume", volume]
    return ["buildah", *_storage(), *options, container, "--", *command]


def test_the_image_is_small(built: Built) -> None:
    assert built.size < SIZE_LIMIT, f"{built.size / 1e6:.0f} MB"


def test_the_health_check_is_kept(built: Built) -> None:
    check = built.inspected.get("Healthcheck") or {}
    assert "OPENPACS_HEALTH_URL" in " ".join(check.get("Test", [])), built.inspected.keys()


# A check inside the image answers by its exit status, and success is 42, not 0: buildah 1.28's
# chroot isolation now and then loses the output of a process that exits at once (about one
# run in fifty here; the status arrives), and a run that did nothing cannot pass for one that
# found nothing.
PASSED = 42


def check_in(container: str, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(run_in(container, "sh", "-c", script), capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip


def test_it_runs_as_the_unprivileged_user(built: Built, container: str) -> None:
    assert built.inspected["Config"]["User"] == "10001:10001"
    assert built.inspected["Config"]["Entrypoint"] == ["openpacs"]
    result = check_in(container, f'[ "$(id -u):$(id -g)" = 10001:10001 ] && exit {PASSED}; id')
    assert result.returncode == PASSED, f"{result.returncode}: {result.stdout}{result.stderr}"


def test_no_compiler_and_no_pip_inside(container: str) -> None:
    script = (
        "for tool in gcc cc c++ g++ clang make pip pip3; do"
        ' command -v "$tool" && exit 1; done;'
        " python3 -m pip --version 2>/dev/null && exit 2;"
        " python3 -m ensurepip --version 2>/dev/null && exit 3;"
        " ls /usr/share/python-wheels 2>/dev/null && exit 4;"
        f" exit {PASSED}"
    )
    result = check_in(container, script)
    assert result.returncode == PASSED, f"{result.returncode}: {result.stdout}{result.stderr}"


def test_a_study_is_stored_found_and_retrieved_through_the_image(
    container: str, tmp_path: Path
) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    conf.chmod(0o755)
    dicom_port, http_port = free_port(), free_port()
    (conf / "admin-password").write_text("image-admin-password\n", encoding="utf-8")
    (conf / "openpacs.toml").write_text(
        f"""
[dicom]
port = {dicom_port}
workers = 1

[http]
host = "127.0.0.1"
port = {http_port}

[auth]
admin_password_file = "/conf/admin-password"
""",
        encoding="utf-8",
    )
    for path in conf.iterdir():
        path.chmod(0o644)
    command = run_in(container, "openpacs", "serve", "--config", "/conf/openpacs.toml",
                     volumes=(f"{conf}:/conf:ro",))  # fmt: skip
    log = (tmp_path / "serve.log").open("w")  # closed in the finally below
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{http_port}/health", timeout=5)
                if health.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise AssertionError((tmp_path / "serve.log").read_text()[-3000:])
            time.sleep(0.2)

        series = corpus.synthetic_ct_series(3, rows=16, columns=16)
        assert {s.Status for s in scu.store(dicom_port, series)} == {0x0000}
        study = str(series[0].StudyInstanceUID)
        matches, final = scu.find(dicom_port, scu.identifier("STUDY", StudyInstanceUID=study))
        assert final.Status == 0x0000
        assert [str(m.StudyInstanceUID) for m in matches] == [study]
        syntax = str(series[0].file_meta.TransferSyntaxUID)
        responses, received = scu.get(
            dicom_port,
            scu.identifier("STUDY", StudyInstanceUID=study),
            [(str(series[0].SOPClassUID), [syntax])],
        )
        assert responses[-1].Status == 0x0000
        assert {str(d.SOPInstanceUID) for d in received.datasets} == {
            str(d.SOPInstanceUID) for d in series
        }
        login = httpx.post(
            f"http://127.0.0.1:{http_port}/api/session",
            json={"username": "admin", "password": "image-admin-password"},
            timeout=30,
        )
        assert login.status_code == 200, login.text
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
        log.close()
