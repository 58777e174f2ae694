"""Errors to HTTP answers: the one mapping table, request ids, and the middleware using both.

The web layer's own errors are a branch of the one exception tree
(:mod:`cam_tasks.domain.errors`)::

    CamTasksError                  (cam_tasks.domain)
    └── web
        ├── ApiError               malformed HTTP: JSON, query, id, header, size, media type
        ├── AuthenticationError    no acceptable credentials (401; cam_tasks.web.auth)
        └── RateLimitedError       a principal submits faster than its rate (429;
                                   cam_tasks.web.limits)

Nothing in the web layer raises the bare root. Three kinds of failure reach the middleware, and
each becomes an error envelope:

- an :class:`ApiError` raised by this package while decoding a request (malformed JSON or
  query, body too large, wrong media type), which carries its own status;
- any other :class:`CamTasksError` (the service's, the domain's, the web layer's own): looked
  up in :data:`ERROR_RULES` (by class, then its bases), which alone decides status, machine
  code, message and details;
- an ``aiohttp`` HTTP exception from routing (unknown route, method not allowed).

Anything else (and a :class:`CamTasksError` the table does not know) is a bug or an outage we
did not anticipate: it is logged with the request id and answered with a generic 500 whose body
holds no exception text, class name, path or traceback.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler

from cam_tasks.domain import (
    AccessDeniedError,
    ActiveTaskExistsError,
    CamTasksError,
    DatabaseUnavailableError,
    IllegalTransitionError,
    InvalidParamsError,
    ScheduleConflictError,
    ScheduleNotFoundError,
    TaskNotFoundError,
    UnknownTaskTypeError,
)
from cam_tasks.service import QueueFullError, QueueNotFoundError
from cam_tasks.web.auth import AuthenticationError
from cam_tasks.web.envelope import error_response
from cam_tasks.web.limits import RateLimitedError

__all__ = [
    "ERROR_RULES",
    "REQUEST_ID_HEADER",
    "REQUEST_ID_KEY",
    "ApiError",
    "ErrorRule",
    "current_request_id",
    "error_middleware",
]

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER: Final = "X-Request-ID"
#: The id of the current request (the client's when sane, else generated), for handlers and logs.
REQUEST_ID_KEY: Final = web.RequestKey("cam_tasks.request_id", str)
#: The id of the request being served in this context, if any: set by :func:`error_middleware`
#: around the handler, so it follows the handler's awaits and the tasks it starts (and no
#: other request's); :class:`~cam_tasks.web.log_context.LogContextFilter` puts it on records.
current_request_id: Final[ContextVar[str | None]] = ContextVar("cam_tasks_request_id", default=None)

# A client-supplied id is echoed into headers and logs, so only a short, plain token is trusted.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

Details = list[dict[str, Any]]


class ApiError(CamTasksError):
    """A request this package refuses before any use case runs (decoding, media type, size):
    answered with ``status`` and the machine code ``error`` as they are, not through
    :data:`ERROR_RULES`.

    ``msg`` and ``details`` are sent to the client as they are: write them for the client.
    """

    def __init__(
        self, status: int, error: str, msg: str, details: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        super().__init__(msg)
        self.status = status
        self.error = error
        self.msg = msg
        self.details = [dict(d) for d in details]


@dataclass(frozen=True, slots=True)
class ErrorRule:
    """How one domain error is answered. ``describe`` turns the error into the client's message
    and details; ``headers`` adds response headers (``Retry-After``)."""

    status: int
    error: str
    describe: Callable[[Any], tuple[str, Details]]
    headers: Callable[[Any], dict[str, str]] = lambda _exc: {}


def _not_found(exc: TaskNotFoundError) -> tuple[str, Details]:
    return "task not found", [{"task_id": exc.task_id}]


def _conflict(exc: IllegalTransitionError) -> tuple[str, Details]:
    detail = {"task_id": exc.task_id, "status": exc.status, "action": exc.action}
    return f"task is {exc.status}: cannot {exc.action}", [detail]


def _active_exists(exc: ActiveTaskExistsError) -> tuple[str, Details]:
    detail = {"task_id": exc.task_id, "active_task_id": exc.active_task_id}
    return "an active task holds this task's unique_key", [detail]


def _unknown_type(exc: UnknownTaskTypeError) -> tuple[str, Details]:
    detail = {
        "loc": ["type"],
        "msg": "no executor is registered for this task type",
        "type": "unknown_task_type",
        "known": sorted(exc.known),
    }
    return "unknown task type", [detail]


def _invalid(exc: InvalidParamsError) -> tuple[str, Details]:
    return "validation failed", list(exc.details)


def _queue_full(exc: QueueFullError) -> tuple[str, Details]:
    return "too many pending tasks, retry later", [{"retry_after_s": exc.retry_after_s}]


def _retry_after(exc: QueueFullError | RateLimitedError) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}


def _unauthenticated(exc: AuthenticationError) -> tuple[str, Details]:
    return exc.msg, []


def _challenge(exc: AuthenticationError) -> dict[str, str]:
    return {"WWW-Authenticate": exc.challenge}


def _forbidden(exc: AccessDeniedError) -> tuple[str, Details]:
    return f"a {exc.role.value} may not {exc.action.value}", [{"action": exc.action.value}]


def _rate_limited(exc: RateLimitedError) -> tuple[str, Details]:
    return "too many submissions, retry later", [{"retry_after_s": round(exc.retry_after_s, 3)}]


def _schedule_not_found(exc: ScheduleNotFoundError) -> tuple[str, Details]:
    return "schedule not found", [{"name": exc.name}]


def _schedule_conflict(exc: ScheduleConflictError) -> tuple[str, Details]:
    return f"schedule conflict: {exc.reason}", [{"name": exc.name}]


def _queue_not_found(exc: QueueNotFoundError) -> tuple[str, Details]:
    return "queue not found", [{"name": exc.name, "known": sorted(exc.known)}]


def _unavailable(_exc: DatabaseUnavailableError) -> tuple[str, Details]:
    # A store that timed out mid-write may have applied it: a blind retry of a submit can
    # create a second task, a retry with the same Idempotency-Key returns the first.
    return (
        "the task store is unavailable, retry later; a submit is safe to retry only with an "
        "Idempotency-Key (it may have been stored)",
        [],
    )


#: The one table from domain errors to HTTP answers. Subclasses inherit their base's rule.
ERROR_RULES: Final[Mapping[type[CamTasksError], ErrorRule]] = {
    AuthenticationError: ErrorRule(401, "unauthorized", _unauthenticated, _challenge),
    AccessDeniedError: ErrorRule(403, "forbidden", _forbidden),
    TaskNotFoundError: ErrorRule(404, "not_found", _not_found),
    IllegalTransitionError: ErrorRule(409, "conflict", _conflict),
    ActiveTaskExistsError: ErrorRule(409, "conflict", _active_exists),
    ScheduleNotFoundError: ErrorRule(404, "not_found", _schedule_not_found),
    ScheduleConflictError: ErrorRule(409, "conflict", _schedule_conflict),
    QueueNotFoundError: ErrorRule(404, "not_found", _queue_not_found),
    UnknownTaskTypeError: ErrorRule(422, "unknown_task_type", _unknown_type),
    InvalidParamsError: ErrorRule(422, "validation_error", _invalid),
    QueueFullError: ErrorRule(429, "queue_full", _queue_full, _retry_after),
    RateLimitedError: ErrorRule(429, "rate_limited", _rate_limited, _retry_after),
    DatabaseUnavailableError: ErrorRule(503, "database_unavailable", _unavailable),
}

# The machine code and message of each HTTP status that is not a domain error: those aiohttp's
# router raises itself (no route, wrong method), and those ApiError carries (decoding).
HTTP_ERRORS: Final[Mapping[int, tuple[str, str]]] = {
    400: ("bad_request", "bad request"),
    403: ("forbidden", "forbidden"),
    404: ("not_found", "no such resource"),
    405: ("method_not_allowed", "method not allowed"),
    408: ("request_timeout", "request body not received in time"),
    413: ("payload_too_large", "request body too large"),
    415: ("unsupported_media_type", "unsupported media type"),
    503: ("service_unavailable", "service unavailable, retry later"),
}


def _rule_for(exc: CamTasksError) -> ErrorRule | None:
    for cls in type(exc).__mro__:
        if cls in ERROR_RULES:
            return ERROR_RULES[cls]
    return None


class _RequestIds:
    """Fresh request ids: 32 hex digits, 16 drawn at random once per process (again in a
    forked child) and a 16-digit counter. Unique across processes as a UUID4 would be, for a
    counter step instead of a system call per request: an id correlates logs, it is no
    secret."""

    def __init__(self) -> None:
        self._reseed()
        if hasattr(os, "register_at_fork"):  # a forked child must not repeat its parent's ids
            os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & _COUNTER_MASK:016x}"


_COUNTER_MASK: Final = (1 << 64) - 1
_request_ids: Final = _RequestIds()


def _request_id(request: web.Request) -> str:
    supplied = request.headers.get(REQUEST_ID_HEADER)
    if supplied is not None and _SANE_REQUEST_ID.fullmatch(supplied):
        return supplied
    return _request_ids.next()


def _allowed_methods(request: web.Request, exc: web.HTTPMethodNotAllowed) -> list[str]:
    """The methods of the resource the path names. aiohttp's router unites the methods of
    every resource whose pattern matches, so ``OPTIONS /tasks/sync-assets`` would also offer
    the GET and DELETE of ``/tasks/{task_id}``; a fixed path names its own resource only."""
    for resource in request.app.router.resources():
        if isinstance(resource, web.PlainResource) and resource.canonical == request.path:
            return sorted({route.method for route in resource})
    return sorted(exc.allowed_methods)


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    error, msg = HTTP_ERRORS.get(exc.status, ("http_error", exc.reason.lower()))
    headers: dict[str, str] = {}
    details: Details = []
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = _allowed_methods(request, exc)
        headers["Allow"] = ",".join(allowed)
        details.append({"allowed_methods": allowed})
    return error_response(exc.status, error, msg, details, headers=headers)


def _internal_error(request: web.Request, request_id: str) -> web.Response:
    # Called inside an ``except`` block: logger.exception records the traceback server-side.
    logger.exception(
        "unhandled error serving %s %s",
        request.method,
        request.path,
        extra={"request_id": request_id},
    )
    return error_response(
        500, "internal_error", "internal server error", [{"request_id": request_id}]
    )


def _from_domain_error(request: web.Request, request_id: str, exc: CamTasksError) -> web.Response:
    rule = _rule_for(exc)
    if rule is None:
        return _internal_error(request, request_id)
    if rule.status >= 500:
        logger.warning(
            "%s %s answered %d: %s",
            request.method,
            request.path,
            rule.status,
            rule.error,
            extra={"request_id": request_id},
        )
    msg, details = rule.describe(exc)
    return error_response(rule.status, rule.error, msg, details, headers=rule.headers(exc))


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request an id (in :data:`REQUEST_ID_KEY`, and in :data:`current_request_id`
    while the handler runs), answer every failure with an error envelope, and put the id on
    every response (``X-Request-ID``). ``CancelledError`` is never caught."""
    request_id = _request_id(request)
    request[REQUEST_ID_KEY] = request_id
    token = current_request_id.set(request_id)
    response: web.StreamResponse
    try:
        response = await handler(request)
    except ApiError as exc:  # before its base: it carries its own answer
        response = error_response(exc.status, exc.error, exc.msg, exc.details)
    except CamTasksError as exc:
        response = _from_domain_error(request, request_id, exc)
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects and the like are answers, not errors
            raise
        response = _from_http_exception(request, exc)
    except Exception:
        response = _internal_error(request, request_id)
    finally:
        current_request_id.reset(token)
    if not response.prepared:  # a streamed response sets its own headers before preparing
        response.headers[REQUEST_ID_HEADER] = request_id
    return response
