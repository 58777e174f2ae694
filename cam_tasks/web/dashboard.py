"""The built-in dashboard: static HTML, JS and CSS served as an aiohttp sub-application.

No build step and nothing from a CDN: the files in ``static/`` are what the browser runs. The
page reaches the task API only through its public HTTP routes; where the API is mounted is
written into the page (``<meta name="cam-api">``) when it is served.

Every answer carries a strict Content-Security-Policy (scripts, styles and connections from this
origin only, no inline script, no framing), so even a rendering bug cannot run task data as code.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["DEFAULT_DASHBOARD_PREFIX", "create_dashboard"]

#: Where :func:`cam_tasks.setup` mounts the dashboard on the host application.
DEFAULT_DASHBOARD_PREFIX: Final = "/cam"

_STATIC = Path(__file__).parent / "static"
#: The page's files: JavaScript modules (``app.js`` imports the others) and the style sheet.
_MODULES: Final = (
    "app.js",
    "core.js",
    "cron.js",
    "overview.js",
    "tasks.js",
    "task.js",
    "schedules.js",
    "inventory.js",
    "submit.js",
)
_ASSETS: Final = {**dict.fromkeys(_MODULES, "text/javascript"), "app.css": "text/css"}
_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def create_dashboard(api_prefix: str) -> web.Application:
    """The dashboard as an application to mount (``host.add_subapp("/cam", …)``); it calls the
    API at ``api_prefix`` on the same origin. ``GET /`` is the page (mount prefix without a
    slash redirects to it), ``GET /<file>`` for each of its JavaScript modules and ``app.css``.
    Views are chosen by the URL fragment (``#/tasks/<id>``), so the server has one page."""
    page = (
        (_STATIC / "index.html")
        .read_text(encoding="utf-8")
        .replace("{{api_prefix}}", html.escape(api_prefix, quote=True))
    )
    assets = {name: (_STATIC / name).read_bytes() for name in _ASSETS}

    async def index(_: web.Request) -> web.Response:
        return web.Response(
            text=page, content_type="text/html", charset="utf-8", headers=_SECURITY_HEADERS
        )

    async def to_index(request: web.Request) -> web.Response:
        raise web.HTTPPermanentRedirect(f"{request.path}/")

    def serving(name: str) -> Handler:
        async def asset(_: web.Request) -> web.Response:
            return web.Response(
                body=assets[name],
                content_type=_ASSETS[name],
                charset="utf-8",
                headers=_SECURITY_HEADERS,
            )

        return asset

    app = web.Application()
    app.router.add_get("", to_index)
    app.router.add_get("/", index)
    for name in _ASSETS:
        # One fixed route per file: nothing from the URL reaches the file system.
        app.router.add_get(f"/{name}", serving(name))
    return app
