"""The OHIF viewer (v2, `@ohif/viewer`'s built app) served on its own origin for the browser
tests, configured to use an openpacs DICOMweb service.

`scripts/install-ohif` (run by scripts/test) installs the exact versions of ohif/package-lock.json
under the user's cache folder; `ohif_dist()` finds them there. The dist folder's own index.html
loads a polyfill from a CDN, so the site serves a page of its own around `index.umd.js`, and an
`app-config.js` the test sets (`OhifSite.configure`). Every other path is a file of the dist
folder or, for the app's routes (`/viewer/...`), the page.

    with serving_ohif() as site:
        site.configure(f"{web.url}/dicom-web", basic=("reader", password))
        page.goto(site.url + "/")
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

OHIF_PACKAGE = Path(__file__).resolve().parent / "ohif"

# OHIF 2 sends `requestOptions.auth` with its QIDO-RS and metadata requests only: its image
# loader asks the OpenID Connect user for a token. The page gives the loader the same header.
PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>OHIF Viewer</title></head>
<body>
<div id="root"></div>
<script src="/app-config.js"></script>
<script src="/index.umd.js" crossorigin></script>
<script>
  window.OHIFViewer.installViewer(window.config, "root", function () {});
  window.cornerstoneWADOImageLoader.configure({
    beforeSend: function (xhr) {
      if (window.openpacsAuthorization) {
        xhr.setRequestHeader("Authorization", window.openpacsAuthorization);
      }
    },
  });
</script>
</body>
</html>
"""


def ohif_dist() -> Path:
    """Where scripts/install-ohif put the viewer's built app for the current lock file."""
    lock = (OHIF_PACKAGE / "package-lock.json").read_bytes()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    installed = cache / "openpacs" / "ohif" / hashlib.sha256(lock).hexdigest()[:16]
    return installed / "node_modules" / "@ohif" / "viewer" / "dist"


@dataclass
class OhifSite:
    url: str
    """The site's origin, e.g. http://127.0.0.1:40123 (no trailing slash)."""
    config: str = field(default="window.config = {};")

    def configure(
        self,
        dicomweb: str,
        *,
        basic: tuple[str, str] | None = None,
        bearer: str | None = None,
    ) -> None:
        """Point the viewer at `dicomweb` with HTTP Basic (OHIF's `user:password` form) or a
        bearer token (OHIF's custom header: `auth` as a function)."""
        server: dict[str, Any] = {
            "name": "openpacs",
            "wadoUriRoot": dicomweb,
            "qidoRoot": dicomweb,
            "wadoRoot": dicomweb,
            "qidoSupportsIncludeField": True,
            "imageRendering": "wadors",
            "thumbnailRendering": "wadors",
            "enableStudyLazyLoad": True,
            "supportsFuzzyMatching": True,
            "requestOptions": {"requestFromBrowser": True},
        }
        config = {
            "routerBasename": "/",
            "showStudyList": True,
            "extensions": [],
            "studyPrefetcher": {"enabled": False},
            "servers": {"dicomWeb": [server]},
        }
        script = [f"window.config = {json.dumps(config)};"]
        options = "window.config.servers.dicomWeb[0].requestOptions"
        if basic is not None:
            user_password = f"{basic[0]}:{basic[1]}"
            header = "Basic " + base64.b64encode(user_password.encode()).decode()
            script.append(f"{options}.auth = {json.dumps(user_password)};")
        elif bearer is not None:
            header = f"Bearer {bearer}"
            script.append(f"{options}.auth = function () {{ return {json.dumps(header)}; }};")
        else:
            header = ""
        script.append(f"window.openpacsAuthorization = {json.dumps(header)};")
        self.config = "\n".join(script) + "\n"


class _Handler(SimpleHTTPRequestHandler):
    site: OhifSite

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/app-config.js":
            self._reply(self.site.config.encode(), "text/javascript; charset=utf-8")
        elif path != "/" and Path(self.translate_path(path)).is_file():
            super().do_GET()
        else:
            self._reply(PAGE.encode(), "text/html; charset=utf-8")

    def _reply(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serving_ohif(dist: Path) -> Iterator[OhifSite]:
    """The viewer on a free loopback port, in a thread, until the block ends."""
    site = OhifSite(url="")
    handler = type("Handler", (_Handler,), {"site": site})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(dist)))
    server.daemon_threads = True
    site.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="ohif-site", daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
