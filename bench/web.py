"""The HTTP figures: QIDO-RS study search, WADO-RS of a whole study, a rendered frame.

Every system is asked the same DICOMweb URLs under `/dicom-web` (Orthanc's DICOMweb plugin,
openpacs' HTTP door), over one keep-alive connection. openpacs authenticates every request:
the client logs in once (`POST /api/session`) and sends the session cookie, as the viewer does,
so no request pays for a password check.
"""

from __future__ import annotations

import http.client
import json
import time
from statistics import median

from bench.procs import HOST, BenchError

DICOMWEB = "/dicom-web"
JSON = "application/dicom+json"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'


Reply = tuple[int, str, bytes, int, float]  # status, content type, body, size, seconds


class Client:
    """One keep-alive HTTP connection, logged in when `login` (user, password) is given."""

    def __init__(
        self, port: int, timeout: float = 120.0, login: tuple[str, str] | None = None
    ) -> None:
        self.port = port
        self.timeout = timeout
        self.connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
        self.headers: dict[str, str] = {}
        if login is not None:
            self._login(*login)

    def _login(self, user: str, password: str) -> None:
        body = json.dumps({"username": user, "password": password})
        self.connection.request(
            "POST", "/api/session", body=body, headers={"Content-Type": "application/json"}
        )
        response = self.connection.getresponse()
        response.read()
        cookie = response.getheader("Set-Cookie", "")
        if response.status != 200 or not cookie:
            raise BenchError(f"login to port {self.port} failed: HTTP {response.status}")
        self.headers["Cookie"] = cookie.split(";", 1)[0]

    def get(
        self, path: str, accept: str, *, keep: bool = True
    ) -> tuple[int, str, bytes, int, float]:
        """GET `path`; the body is kept only when `keep` (else just counted)."""
        start = time.perf_counter()
        try:
            self.connection.request("GET", path, headers={"Accept": accept, **self.headers})
            response = self.connection.getresponse()
            kept, size = [], 0
            while chunk := response.read(1 << 20):
                size += len(chunk)
                if keep:
                    kept.append(chunk)
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
            raise
        seconds = time.perf_counter() - start
        return (
            response.status,
            response.getheader("Content-Type", ""),
            b"".join(kept),
            size,
            seconds,
        )

    def close(self) -> None:
        self.connection.close()


def dicomweb_available(
    port: int | None, timeout: float, login: tuple[str, str] | None = None
) -> str | None:
    """None when `/dicom-web/studies` answers on `port` within `timeout` seconds, else why not."""
    if port is None:
        return "no HTTP port"
    deadline = time.monotonic() + timeout
    reason = "nothing listening"
    while time.monotonic() < deadline:
        try:
            client = Client(port, timeout=5, login=login)
        except (OSError, http.client.HTTPException, BenchError) as exc:
            reason = f"no HTTP service ({type(exc).__name__})"
            time.sleep(0.2)
            continue
        try:
            status, _, _, _, _ = client.get(f"{DICOMWEB}/studies?limit=1", JSON)
            if status in (200, 204):
                return None
            reason = f"HTTP {status} on {DICOMWEB}/studies"
        except (OSError, http.client.HTTPException) as exc:
            reason = f"no HTTP service ({type(exc).__name__})"
        finally:
            client.close()
        time.sleep(0.2)
    return reason


def qido(client: Client, query: str, repeats: int) -> dict[str, object]:
    """Median milliseconds of `/dicom-web/studies?<query>` and the number of results."""
    samples, results = [], -1
    for _ in range(repeats):
        status, _, body, _, seconds = client.get(f"{DICOMWEB}/studies?{query}", JSON)
        if status not in (200, 204):
            raise BenchError(f"QIDO-RS {query}: HTTP {status}")
        results = len(json.loads(body)) if body.strip() else 0
        samples.append(seconds * 1000)
    return {"value": median(samples), "samples": samples, "results": results}


def wado_study(client: Client, study_uid: str, repeats: int) -> dict[str, object]:
    """MB/s (10^6 bytes) of the whole study as multipart/related application/dicom."""
    samples, size = [], 0
    for _ in range(repeats):
        status, kind, _, size, seconds = client.get(
            f"{DICOMWEB}/studies/{study_uid}", MULTIPART_DICOM, keep=False
        )
        if status != 200 or not kind.startswith("multipart/related"):
            raise BenchError(f"WADO-RS study: HTTP {status} {kind}")
        samples.append(size / 1e6 / seconds)
    return {"value": median(samples), "samples": samples, "bytes": size}


def rendered(client: Client, uids: dict[str, str], media: str, repeats: int) -> dict[str, object]:
    """Median milliseconds of frame 1 rendered as `media` (image/png or image/jpeg)."""
    path = (
        f"{DICOMWEB}/studies/{uids['study_uid']}/series/{uids['series_uid']}"
        f"/instances/{uids['sop_uid']}/frames/1/rendered"
    )
    samples, size = [], 0
    for _ in range(repeats):
        status, kind, _, size, seconds = client.get(path, media, keep=False)
        if status != 200 or not kind.startswith(media):
            raise BenchError(f"rendered {media}: HTTP {status} {kind}")
        samples.append(seconds * 1000)
    return {"value": median(samples), "samples": samples, "bytes": size, "url": path}
