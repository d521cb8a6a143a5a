"""Run the servers' boot script (compute module user data) for real, on this machine.

The rendered script runs under bash with its absolute paths moved into a temporary folder,
against stand-ins for what only an EC2 instance has: the instance metadata service (a local
HTTP server), `aws` (secrets and parameters from a table), `docker` (a registry that refuses
a pull without credentials, and `run ... certs` executing openpacs' own certificate helper),
the ECR credential helper, and `dnf`, `systemctl`, `mount`, `chown` that only record. The
scripts it installs (openpacs-prepare, openpacs-fetch-secrets) run the same way, so a reboot
is a wiped tmpfs followed by openpacs-prepare.
"""

from __future__ import annotations

import http.server
import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PRIVATE_IP = "10.40.32.10"
TOKEN = "imds-token"

#: stand-in commands; each appends its arguments to $HARNESS/calls.log
_RECORD = """#!/bin/bash
printf '%s\\n' "$(basename "$0") $*" >> "$HARNESS/calls.log"
"""

_STUBS = {
    "dnf": _RECORD,
    "systemctl": _RECORD,
    "mount": _RECORD,
    "chown": _RECORD,
    "mountpoint": _RECORD + "exit 1\n",  # nothing is mounted: the tmpfs is made each boot
    "logger": '#!/bin/bash\ncat >> "$HARNESS/boot.log"\n',
    "hostname": "#!/bin/bash\necho ip-10-40-32-10.eu-west-1.compute.internal\n",
}

_AWS = """
import json, os, sys
args = sys.argv[1:]
state = os.environ["HARNESS"]
with open(os.path.join(state, "calls.log"), "a") as log:
    log.write("aws " + " ".join(args) + "\\n")
def option(name):
    return args[args.index(name) + 1]
table = json.load(open(os.path.join(state, "aws.json")))
if args[:2] == ["secretsmanager", "get-secret-value"]:
    value = table["secrets"].get(option("--secret-id"))
elif args[:2] == ["ssm", "get-parameter"]:
    value = table["parameters"].get(option("--name"))
elif args[:2] == ["ecr", "get-login-password"]:
    value = "ecr-token"
else:
    value = None
if value is None:
    sys.exit("aws: An error occurred (ResourceNotFoundException): " + " ".join(args))
print(value)
"""

_CREDENTIAL_HELPER = """
import json, subprocess, sys
assert sys.argv[1:] == ["get"], sys.argv
registry = sys.stdin.read().strip()
token = subprocess.run(["aws", "ecr", "get-login-password"], capture_output=True, text=True,
                       check=True).stdout.strip()
print(json.dumps({"ServerURL": registry, "Username": "AWS", "Secret": token}))
"""

_DOCKER = """
import json, os, subprocess, sys
args = sys.argv[1:]
state = os.environ["HARNESS"]
with open(os.path.join(state, "calls.log"), "a") as log:
    log.write("docker " + " ".join(args) + "\\n")
config_path = os.path.join(os.environ["DOCKER_CONFIG"], "config.json")
def config():
    try:
        return json.load(open(config_path))
    except FileNotFoundError:
        return {}
def credentials(registry):
    document = config()
    helper = document.get("credHelpers", {}).get(registry)
    if helper:
        answer = subprocess.run(["docker-credential-" + helper, "get"], input=registry,
                                capture_output=True, text=True)
        return answer.returncode == 0 and bool(json.loads(answer.stdout or "{}").get("Secret"))
    return registry in document.get("auths", {})
pulled = os.path.join(state, "pulled")
if args[0] == "login":
    registry = args[-1]
    sys.stdin.read()
    document = config()
    document.setdefault("auths", {})[registry] = {"auth": "token"}
    os.makedirs(os.path.dirname(config_path), exist_ok=True)
    json.dump(document, open(config_path, "w"))
elif args[0] == "pull":
    image = args[-1]
    if not credentials(image.split("/")[0]):
        sys.exit(f"Error response from daemon: pull access denied for {image}: "
                 "no basic auth credentials")
    open(pulled, "a").write(image + "\\n")
elif args[0] == "run":
    words = args[1:]
    image_at = next(i for i, w in enumerate(words) if "/" in w and "@sha256:" in w)
    if not os.path.exists(pulled) or words[image_at] not in open(pulled).read().split():
        sys.exit("Unable to find image " + words[image_at] + " locally")
    volumes = dict(words[i + 1].split(":")[1::-1] for i, w in enumerate(words) if w == "--volume")
    command = words[image_at + 1:]
    if command[:1] == ["certs"]:
        mapped = [next((volumes[k] + w[len(k):] for k in volumes if w.startswith(k)), w)
                  for w in command]
        sys.exit(subprocess.run([sys.executable, "-m", "openpacs", *mapped]).returncode)
"""


def _script(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _python(path: Path, code: str) -> None:
    _script(path, f"#!{sys.executable}\n{code}")


class _Metadata(http.server.BaseHTTPRequestHandler):
    """IMDSv2: a PUT for a token, then GETs that carry it."""

    def do_PUT(self) -> None:
        ok = self.path == "/latest/api/token" and self.headers.get(
            "X-aws-ec2-metadata-token-ttl-seconds"
        )
        self._answer(200 if ok else 400, TOKEN)

    def do_GET(self) -> None:
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            self._answer(401, "")
        elif self.path == "/latest/meta-data/local-ipv4":
            self._answer(200, PRIVATE_IP)
        else:
            self._answer(404, "")

    def _answer(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def metadata_service() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Metadata)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class Machine:
    """A stand-in EC2 instance's file system and its AWS account."""

    root: Path
    metadata_url: str

    def path(self, absolute: str) -> Path:
        """Where an absolute path of the instance lives here."""
        return self.root / absolute.lstrip("/")

    def read(self, absolute: str) -> str:
        """A file the boot wrote, with the instance's own paths in it again."""
        return self.path(absolute).read_text(encoding="utf-8").replace(str(self.root), "")

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def calls(self) -> list[str]:
        log = self.root / "calls.log"
        return log.read_text(encoding="utf-8").splitlines() if log.exists() else []

    @property
    def boot_log(self) -> str:
        log = self.root / "boot.log"
        return log.read_text(encoding="utf-8") if log.exists() else ""

    def localize(self, script: str) -> str:
        """The instance's paths moved under `root`, the metadata service to the stand-in."""
        for absolute in ("/run/openpacs", "/etc/openpacs", "/etc/systemd/system",
                         "/etc/sysconfig", "/usr/local/sbin", "/root/.docker"):  # fmt: skip
            script = script.replace(absolute, str(self.path(absolute)))
        return script.replace("http://169.254.169.254", self.metadata_url)

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        openpacs_root = str(Path(__file__).resolve().parents[2] / "src")
        return {
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "HARNESS": str(self.root),
            "DOCKER_CONFIG": str(self.path("/root/.docker")),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [openpacs_root, os.environ.get("PYTHONPATH")])
            ),
            "HOME": str(self.root),
            **(extra or {}),
        }

    def run(
        self, script: str, extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", script], env=self.environ(extra), capture_output=True,
            text=True, timeout=180, check=False,
        )  # fmt: skip

    def boot(self, user_data: str) -> subprocess.CompletedProcess[str]:
        """First boot: the user data."""
        return self.run(self.localize(user_data))

    def sysconfig(self) -> dict[str, str]:
        text = self.path("/etc/sysconfig/openpacs").read_text(encoding="utf-8")
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def run_unit_script(self, name: str) -> subprocess.CompletedProcess[str]:
        """What systemd runs for a unit: the installed script (written by the localized user
        data, so already localized) with the unit's environment."""
        script = self.path(f"/usr/local/sbin/{name}")
        return subprocess.run(
            [str(script)], env=self.environ(self.sysconfig()), capture_output=True,
            text=True, timeout=180, check=False,
        )  # fmt: skip

    def reboot(self) -> subprocess.CompletedProcess[str]:
        """The tmpfs is gone after a reboot; systemd runs openpacs-prepare again."""
        run = self.path("/run/openpacs")
        for child in run.iterdir() if run.exists() else []:
            child.unlink()
        return self.run_unit_script("openpacs-prepare")


@contextmanager
def machine(root: Path, secrets: dict[str, str], parameters: dict[str, str]) -> Iterator[Machine]:
    """A stand-in instance whose account holds `secrets` (ARN -> value) and SSM `parameters`."""
    root.mkdir(parents=True, exist_ok=True)
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for name, text in _STUBS.items():
        _script(bin_dir / name, text)
    _python(bin_dir / "aws", _AWS)
    _python(bin_dir / "docker", _DOCKER)
    _python(bin_dir / "docker-credential-ecr-login", _CREDENTIAL_HELPER)
    (root / "aws.json").write_text(
        json.dumps({"secrets": secrets, "parameters": parameters}), encoding="utf-8"
    )
    for absolute in ("/etc/sysconfig", "/etc/systemd/system", "/usr/local/sbin", "/root", "/run"):
        (root / absolute.lstrip("/")).mkdir(parents=True, exist_ok=True)
    with metadata_service() as url:
        yield Machine(root, url)
