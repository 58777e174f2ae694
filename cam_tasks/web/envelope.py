"""The response envelope every JSON answer of the API uses.

Success: ``{"code": 0, "msg": "success", "data": …}``.
Error: ``{"code": <HTTP status>, "msg": <human text>, "data": {"error": <machine code>,
"details": [...]}}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from aiohttp import web

__all__ = ["error_response", "json_response", "success_body", "success_response"]

_JSON = "application/json"


def _respond(
    payload: Mapping[str, Any], status: int, headers: Mapping[str, str] | None
) -> web.Response:
    return json_response(orjson.dumps(payload), status=status, headers=headers)


def json_response(
    body: bytes, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An answer whose body is ``body``, already encoded JSON (UTF-8)."""
    return web.Response(
        body=body, status=status, content_type=_JSON, charset="utf-8", headers=headers
    )


def success_body(data: Any) -> bytes:
    """``data`` wrapped in the success envelope and encoded; it must be JSON-able by orjson."""
    return orjson.dumps({"code": 0, "msg": "success", "data": data})


def success_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """``data`` wrapped in the success envelope; it must be JSON-able by orjson."""
    return json_response(success_body(data), status=status, headers=headers)


def error_response(
    status: int,
    error: str,
    msg: str,
    details: Sequence[Mapping[str, Any]] = (),
    *,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """An error envelope. ``msg`` and ``details`` go to the client verbatim: callers pass only
    text they wrote themselves, never an exception's message from a driver or the runtime."""
    payload = {"code": status, "msg": msg, "data": {"error": error, "details": list(details)}}
    return _respond(payload, status, headers)
