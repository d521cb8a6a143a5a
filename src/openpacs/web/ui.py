"""The browser portal and viewer: plain ES modules and CSS served at `/`, no build step.

Mounted last by the app factory so every API and DICOMweb route is matched before the static
files. Pages are routed in the browser (`#/studies`, `#/viewer/...`), so the server only
serves files; the UI's JavaScript calls the REST and DICOMweb APIs with the session cookie.
The security headers (a same-origin Content-Security-Policy: the UI has no inline script and
loads nothing from elsewhere) come from the app's middleware, as for every response.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

UI_FOLDER = Path(__file__).with_name("ui")


class UiFiles(StaticFiles):
    """Static files revalidated on each load (ETag), so an upgrade shows at once."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        return response


def mount(app: FastAPI) -> None:
    """Serve the UI at `/`; call after every other route is added."""
    app.mount("/", UiFiles(directory=UI_FOLDER, html=True), name="ui")
