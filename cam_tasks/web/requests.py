"""Request decoding: body, path, header and query, the same way for every route.

Each function reads one part of a request and either returns it decoded or raises the refusal
the client gets (:class:`ApiError` for malformed HTTP, :class:`InvalidParamsError` for a body
that is JSON but not what the route takes), answered by the error middleware:

=====================  ============================================================
:func:`json_body`      415 unless JSON (UTF-8), 413 when too large, 408 when it does not
                       arrive in time, 400 when malformed
:func:`json_object`    422 unless a JSON object
:func:`task_id_of`     400 unless the ``{task_id}`` is shaped like a task id
:func:`idempotency_key`  400 unless one ``Idempotency-Key`` of printable characters
:func:`idempotency_key_problems`  the same rule for a body's ``idempotency_key`` (a 422)
:func:`parse_query`    400 naming every unknown, repeated or invalid query parameter
=====================  ============================================================

Handler modules decode through here and never through each other, so every route refuses the
same input the same way.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any, Final, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from cam_tasks.domain import InvalidParamsError
from cam_tasks.executor import validation_details
from cam_tasks.service import MAX_IDEMPOTENCY_KEY_LENGTH, is_idempotency_key
from cam_tasks.web.errors import ApiError

__all__ = [
    "BODY_READ_TIMEOUT_S_KEY",
    "DEFAULT_BODY_READ_TIMEOUT_S",
    "IDEMPOTENCY_HEADER",
    "MAX_BODY_BYTES_KEY",
    "PRINCIPAL_FIELDS",
    "TASK_ID_PATTERN",
    "idempotency_key",
    "idempotency_key_problems",
    "json_body",
    "json_object",
    "parse_query",
    "principal_field_problems",
    "read_json_object",
    "task_id_of",
]

#: Largest request body accepted, in bytes.
MAX_BODY_BYTES_KEY: Final = web.AppKey("cam_tasks.max_body_bytes", int)
#: Longest a request body may take to arrive, in seconds (from the first read).
BODY_READ_TIMEOUT_S_KEY: Final = web.AppKey("cam_tasks.body_read_timeout_s", float)
DEFAULT_BODY_READ_TIMEOUT_S: Final = 30.0
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
# Task ids are UUIDs; anything not shaped like an id is refused before it reaches a query.
TASK_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

QueryModel = TypeVar("QueryModel", bound=BaseModel)


def _is_json(request: web.Request) -> bool:
    media_type = request.content_type  # "application/octet-stream" when the header is missing
    json_type = media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )
    charset = request.charset
    return json_type and (charset is None or charset.lower() in {"utf-8", "utf8"})


async def _read_body(request: web.Request) -> bytes:
    # The host's client_max_size belongs to the host app, not to this sub-app, so the limit is
    # enforced here: never buffer more than one byte past it, whatever Content-Length says.
    limit = request.app[MAX_BODY_BYTES_KEY]
    too_large = ApiError(413, "payload_too_large", "request body too large", [{"max_bytes": limit}])
    declared = request.content_length
    if declared is not None and declared > limit:
        raise too_large
    content = request.content
    if content.is_eof() and content.total_bytes <= limit:
        # The whole body has arrived already (a small body usually comes with its headers):
        # take it as it is, without a deadline to wait for nothing.
        return content.read_nowait()
    timeout_s = request.app[BODY_READ_TIMEOUT_S_KEY]
    chunks: list[bytes] = []
    size = 0
    # One deadline for the whole body, not per read: a client dribbling a byte at a time would
    # otherwise hold a handler (and its memory) for as long as it likes.
    deadline = asyncio.timeout(timeout_s)
    try:
        async with deadline:
            while True:
                chunk = await content.read(limit + 1 - size)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise too_large
    except TimeoutError:
        if not deadline.expired():  # not ours: some read below timed out on its own
            raise
        raise ApiError(
            408,
            "request_timeout",
            "request body not received in time",
            [{"timeout_s": timeout_s, "received_bytes": size}],
        ) from None


async def json_body(request: web.Request) -> Any:
    """The request body as JSON: 415 unless JSON (UTF-8), 413 when too large, 408 when it has not
    all arrived ``body_read_timeout_s`` after the first read, 400 when malformed."""
    if not _is_json(request):
        raise ApiError(
            415,
            "unsupported_media_type",
            "request body must be application/json (UTF-8)",
            [{"content_type": request.content_type}],
        )
    raw = await _read_body(request)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}" if raw.strip() else "empty body"
        raise ApiError(
            400,
            "bad_request",
            "request body is not valid JSON",
            [{"loc": ["body"], "msg": f"invalid JSON ({where})", "type": "json_invalid"}],
        ) from None
    return value


def json_object(value: Any) -> dict[str, Any]:
    """``value`` (decoded JSON) when it is an object: InvalidParamsError (422) otherwise."""
    if not isinstance(value, dict):
        raise InvalidParamsError(
            "request body must be a JSON object",
            [{"loc": ["body"], "msg": "Input should be a JSON object", "type": "model_type"}],
        )
    return value


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object: 415 unless JSON (UTF-8), 413 when too large, 408 when
    too slow, 400 when malformed, 422 when valid JSON but not an object."""
    return json_object(await json_body(request))


def task_id_of(request: web.Request) -> str:
    """The ``{task_id}`` of the route: 400 unless it is shaped like a task id."""
    task_id = request.match_info["task_id"]
    if not TASK_ID_PATTERN.fullmatch(task_id):
        raise ApiError(
            400,
            "bad_request",
            "malformed task id",
            [
                {
                    "loc": ["path", "task_id"],
                    "msg": "must be 1 to 128 letters, digits, '.', '_', ':' or '-'",
                    "type": "task_id_invalid",
                }
            ],
        )
    return task_id


#: The one rule for idempotency keys, header or body (:func:`is_idempotency_key`), in words.
_IDEMPOTENCY_KEY_RULE: Final = (
    f"1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters without control, format (bidi, zero-width) "
    "or line-separator characters"
)


def idempotency_key(request: web.Request) -> str | None:
    """The ``Idempotency-Key`` header, None when absent: 400 unless one value that is a valid
    idempotency key (:data:`_IDEMPOTENCY_KEY_RULE`)."""
    values = request.headers.getall(IDEMPOTENCY_HEADER, [])
    if not values:
        return None
    key = values[0]
    if len(values) > 1 or not is_idempotency_key(key):
        raise ApiError(
            400,
            "bad_request",
            "malformed Idempotency-Key header",
            [
                {
                    "loc": ["header", IDEMPOTENCY_HEADER],
                    "msg": f"must be one value of {_IDEMPOTENCY_KEY_RULE}",
                    "type": "header_invalid",
                }
            ],
        )
    return key


def idempotency_key_problems(key: str | None, loc: Sequence[str | int]) -> list[dict[str, Any]]:
    """The field error of a body's ``idempotency_key`` at ``loc`` (none when absent or valid), by
    the same rule as the header's; the caller raises them as one InvalidParamsError (422)."""
    if key is None or is_idempotency_key(key):
        return []
    return [
        {
            "loc": [*loc, "idempotency_key"],
            "msg": f"must be {_IDEMPOTENCY_KEY_RULE}",
            "type": "idempotency_key_invalid",
        }
    ]


#: What a task records from the authenticated principal, never from a body: a body naming them
#: is refused, so that nobody believes they were taken.
PRINCIPAL_FIELDS: Final = ("created_by", "project_id")


def principal_field_problems(
    body: dict[str, Any], loc: Sequence[str | int]
) -> list[dict[str, Any]]:
    """The field errors of a submit body (at ``loc``) that names a :data:`PRINCIPAL_FIELDS`
    field; the caller raises them as one InvalidParamsError (422)."""
    return [
        {
            "loc": [*loc, name],
            "msg": "is recorded from the authenticated principal and cannot be given",
            "type": "principal_field",
        }
        for name in PRINCIPAL_FIELDS
        if name in body
    ]


def parse_query(
    request: web.Request, model: type[QueryModel], allowed: frozenset[str]
) -> QueryModel:
    """The query string parsed into ``model``: 400 naming every unknown, repeated or invalid
    parameter."""
    query = request.query
    problems: list[dict[str, Any]] = []
    unknown = sorted(set(query) - allowed)
    if unknown:
        # Also catches bracketed keys (status[$ne]=…): they are never parsed into structures.
        problems.append(
            {
                "loc": ["query"],
                "msg": f"unknown query parameters: {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(allowed))}",
                "type": "unknown_parameter",
                "unknown": unknown,
            }
        )
    for key in sorted(allowed):
        if len(query.getall(key, [])) > 1:
            problems.append(
                {"loc": ["query", key], "msg": "must be given once", "type": "repeated"}
            )
    if not problems:
        try:
            return model.model_validate(dict(query))
        except ValidationError as exc:
            problems = validation_details(exc, ("query",))
    raise ApiError(400, "bad_request", "malformed query", problems)


def reject_query(request: web.Request) -> None:
    """For a route that takes no query: 400 naming the query when the request has one."""
    if request.query:
        raise ApiError(
            400,
            "bad_request",
            "malformed query",
            [{"loc": ["query"], "msg": "takes no query parameters", "type": "unknown_parameter"}],
        )
