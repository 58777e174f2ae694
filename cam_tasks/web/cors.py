"""CORS for the API (aiohttp-cors): off unless origins are configured, and then an allow-list.

A browser page on another origin may call the API only when its origin is listed exactly
(``https://console.example.com``). ``*`` allows every origin and is refused together with
``allow_credentials``: a page anywhere must never make a browser send its cookies or
``Authorization`` to the API. Bearer tokens set by JavaScript need no credentials mode, so
``allow_credentials`` is only for hosts that authenticate by cookie.

CORS does not replace authentication: it only stops browsers from reading answers they were not
allowed to; every request is still authenticated. Preflight requests carry no credentials, so
the authentication middleware lets them through to the preflight handler, which checks the
origin and method itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

import aiohttp_cors
from aiohttp import web

__all__ = ["ALLOWED_HEADERS", "EXPOSED_HEADERS", "check_origins", "enable_cors"]

#: Request headers a cross-origin page may send.
ALLOWED_HEADERS: Final = ("Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID")
#: Response headers a cross-origin page may read (besides the CORS-safelisted ones).
EXPOSED_HEADERS: Final = ("Location", "Retry-After", "X-Request-ID", "WWW-Authenticate")

_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


def check_origins(origins: Iterable[str], *, allow_credentials: bool) -> tuple[str, ...]:
    """The origins, validated: each ``http(s)://host[:port]`` without a path, or ``*`` alone
    and without credentials. ValueError otherwise."""
    checked = tuple(origins)
    if "*" in checked:
        if allow_credentials:
            raise ValueError('CORS origin "*" cannot be combined with allow_credentials')
        if len(checked) > 1:
            raise ValueError('CORS origin "*" must be the only origin')
        return checked
    for origin in checked:
        if not _ORIGIN.fullmatch(origin):
            raise ValueError(f"CORS origin {origin!r} must be scheme://host[:port], no path")
    return checked


def enable_cors(
    app: web.Application,
    origins: Iterable[str],
    *,
    allow_credentials: bool = False,
    max_age_s: int = 600,
) -> None:
    """Allow cross-origin requests from ``origins`` to every route of ``app`` that exists now.

    Call it after the last route is added (the router freezes when the app is mounted).
    ValueError for origins :func:`check_origins` refuses.
    """
    allowed = check_origins(origins, allow_credentials=allow_credentials)
    if not allowed:
        return
    options = aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
        allow_credentials=allow_credentials,
        expose_headers=EXPOSED_HEADERS,
        allow_headers=ALLOWED_HEADERS,
        max_age=max_age_s,
    )
    cors = aiohttp_cors.setup(app, defaults=dict.fromkeys(allowed, options))
    for route in list(app.router.routes()):
        if route.method != "OPTIONS":
            cors.add(route)
