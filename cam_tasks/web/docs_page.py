"""``GET /openapi.json`` and ``GET /docs``: the API's OpenAPI document, and a page that shows it.

Both are public (:func:`cam_tasks.web.create_api` adds :data:`DOCS_PUBLIC_PATHS` to the public
paths): the document describes routes and the shape of their data, never any data, and a client
needs it before it has a token.

The document is generated (:mod:`cam_tasks.web.openapi`) at the first request, for the prefix the
API is mounted under and the executors registered then, and kept for the next ones.

The page is one self-contained HTML answer, put together from ``static/api-docs.html``, ``.js``
and ``.css``: script and style are inline, and the Content-Security-Policy allows exactly those
two by their SHA-256 (no other script, no other origin, no framing). It fetches
``openapi.json`` next to it and builds everything with DOM calls, putting the document's text on
screen only as text, never as HTML. No CDN, no build step.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from pathlib import Path
from typing import Final

import orjson
from aiohttp import web

from cam_tasks.web.keys import SERVICE_KEY
from cam_tasks.web.openapi import openapi_document
from cam_tasks.web.operations import Content, Operation, Reply, documented

__all__ = ["DOCS_PUBLIC_PATHS", "add_docs"]

#: The routes of this module, relative to the API prefix: served without authentication.
DOCS_PUBLIC_PATHS: Final = ("/openapi.json", "/docs")

_OPENAPI_ROUTE: Final = "cam_tasks.openapi"
_STATIC = Path(__file__).parent / "static"
#: Documents already built, by (mount prefix, registered task types).
_DOCUMENTS_KEY: Final = web.AppKey[dict[tuple[str, tuple[str, ...], tuple[str, ...]], bytes]](
    "cam_tasks.openapi_documents"
)

docs_routes = web.RouteTableDef()


def add_docs(app: web.Application) -> None:
    """Serve ``/openapi.json`` and ``/docs`` from the API application ``app``."""
    app[_DOCUMENTS_KEY] = {}
    app.add_routes(docs_routes)


@docs_routes.get("/openapi.json", name=_OPENAPI_ROUTE)
@documented(
    Operation(
        "openapi_document",
        "documentation",
        "This document",
        "OpenAPI 3.1, generated from the models the handlers use and the executors registered "
        "in this process. Public.",
        (Reply(200, "The OpenAPI document.", content=Content.DOCUMENT),),
        public=True,
    )
)
async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI document of this API as it is mounted and with the executors it has."""
    path = str(request.app.router[_OPENAPI_ROUTE].url_for())
    prefix = path.removesuffix("/openapi.json")
    service = request.app[SERVICE_KEY]
    registry, queues = service.registry, service.queues
    documents = request.app[_DOCUMENTS_KEY]
    key = (prefix, tuple(sorted(registry.types)), tuple(sorted(queues)))
    body = documents.get(key)
    if body is None:
        document = openapi_document(request.app, prefix=prefix, registry=registry, queues=queues)
        body = documents[key] = orjson.dumps(document)
    return web.Response(
        body=body,
        content_type="application/json",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


@functools.cache
def _page() -> tuple[str, dict[str, str]]:
    """The page and its headers."""
    script = (_STATIC / "api-docs.js").read_text(encoding="utf-8")
    style = (_STATIC / "api-docs.css").read_text(encoding="utf-8")
    if "</script" in script.lower() or "</style" in style.lower():
        raise ValueError("api-docs.js/.css must not close their own element")
    page = (
        (_STATIC / "api-docs.html")
        .read_text(encoding="utf-8")
        .replace("{{style}}", style)
        .replace("{{script}}", script)
    )
    headers = {
        "Content-Security-Policy": (
            f"default-src 'none'; script-src {_csp_hash(script)}; style-src {_csp_hash(style)}; "
            "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    return page, headers


@docs_routes.get("/docs")
@documented(
    Operation(
        "api_docs_page",
        "documentation",
        "This document as a page",
        "A self-contained page that reads `openapi.json` and shows it. Public.",
        (Reply(200, "The page.", content=Content.HTML),),
        public=True,
    )
)
async def api_docs_page(_: web.Request) -> web.Response:
    """The page that shows ``openapi.json``."""
    page, headers = _page()
    return web.Response(text=page, content_type="text/html", charset="utf-8", headers=headers)
