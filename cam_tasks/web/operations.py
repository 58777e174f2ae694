"""How a route is documented in the OpenAPI document, next to its handler.

Each handler carries its route's :class:`Operation`, attached where the handler is declared::

    @routes.get("/tasks")
    @documented(Operation("list_tasks", "tasks", "List tasks, newest first", ..., replies))
    async def list_tasks(request: web.Request) -> web.Response: ...

so a route, its handler and its description change in one place. :mod:`cam_tasks.web.openapi`
walks the router and documents every route whose handler carries one (:func:`operation_of`):
the document never names a route that is not served (no schedules without a schedule service),
and a route added without one is missing from it, which ``tests/web/test_openapi.py`` reports.
A handler that serves several methods with different descriptions gets one per method.

Schemas are not written here: an operation names the pydantic models (or ``TypeAdapter``) its
handler validates with and answers with, and the document is generated from them. Two sources
are resolved at generation time from the live :class:`~cam_tasks.executor.ExecutorRegistry`:
:class:`ExecutorParams` (the params model of one task type) and the requests listed in
:data:`TYPED_REQUESTS`, whose ``type`` and ``params`` become one variant per registered executor
(:data:`RETYPING_REQUESTS` have one more, without either).

Errors are partly implied, the same way the middlewares apply them: every operation may answer
500; every operation that is not public 401 (and 403 when it writes: a viewer may only read);
one with a body 400, 408, 413, 415 and 422; one with a query or a ``{task_id}`` 400.
``errors`` lists the others the operation's handler and service can raise
(:func:`implied_errors`).

The path parameters, request headers, response headers and error statuses operations name are
described once here (:data:`PATH_PARAMETERS`, :data:`REQUEST_HEADERS`, :data:`RESPONSE_HEADERS`,
:data:`ERROR_STATUSES`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, TypeVar

from aiohttp import hdrs
from pydantic import BaseModel, TypeAdapter

from cam_tasks.domain.schedule import SCHEDULE_NAME_PATTERN
from cam_tasks.service import IDEMPOTENCY_KEY_PATTERN, MAX_IDEMPOTENCY_KEY_LENGTH
from cam_tasks.web.requests import IDEMPOTENCY_HEADER, TASK_ID_PATTERN
from cam_tasks.web.schedule_schemas import CreateScheduleRequest, UpdateScheduleRequest
from cam_tasks.web.schemas import SubmitTaskRequest

__all__ = [
    "ERROR_STATUSES",
    "PATH_PARAMETERS",
    "REQUEST_HEADERS",
    "RESPONSE_HEADERS",
    "RETYPING_REQUESTS",
    "TYPED_REQUESTS",
    "Content",
    "ExecutorParams",
    "OneOf",
    "Operation",
    "Reply",
    "Schema",
    "documented",
    "implied_errors",
    "operation_of",
]


@dataclass(frozen=True, slots=True)
class ExecutorParams:
    """The params model of the executor registered for ``task_type`` (any object when none is)."""

    task_type: str


@dataclass(frozen=True, slots=True)
class OneOf:
    """Exactly one of ``choices`` (which must not overlap: an object and an array)."""

    choices: tuple[Schema, ...]


#: Where a schema comes from: a model, an adapter, or one of the two markers above.
Schema = type[BaseModel] | TypeAdapter[Any] | ExecutorParams | OneOf

#: Requests whose ``type`` names a registered task type and whose ``params`` are that type's
#: params: documented as one variant per executor, told apart by ``type``.
TYPED_REQUESTS: Final[tuple[type[BaseModel], ...]] = (SubmitTaskRequest, CreateScheduleRequest)
#: Requests that may change ``type`` and ``params`` together or leave both alone: documented as
#: one variant without them, and one per executor with both.
RETYPING_REQUESTS: Final[tuple[type[BaseModel], ...]] = (UpdateScheduleRequest,)


class Content(StrEnum):
    """What the body of a reply is."""

    ENVELOPE = "envelope"  #: the success envelope; ``Reply.data`` is the schema of its ``data``
    EMPTY = "empty"  #: no body (204, 304)
    EVENT_STREAM = "event-stream"  #: server-sent events
    HTML = "html"  #: a page for people
    DOCUMENT = "document"  #: the OpenAPI document itself


@dataclass(frozen=True, slots=True)
class Reply:
    """One successful answer. ``data``: the schema of the envelope's ``data`` (of each event's
    ``data`` for an event stream, whose event names are ``events``). ``headers`` names
    :data:`RESPONSE_HEADERS` and says whether each is always sent (``X-Request-ID`` is on every
    answer and need not be named)."""

    status: int
    description: str
    data: Schema | None = None
    content: Content = Content.ENVELOPE
    headers: Mapping[str, bool] = field(default_factory=dict)
    events: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Operation:
    """One route's documentation. ``query``: the model its query string is parsed into (each
    field one parameter); ``task_type_query``: query fields that take a registered task type;
    ``headers``: request headers it reads (names of :data:`REQUEST_HEADERS`); ``public``: served
    without authentication (listed in the API's public paths)."""

    operation_id: str
    tag: str
    summary: str
    description: str
    replies: tuple[Reply, ...]
    errors: frozenset[int] = frozenset()
    body: Schema | None = None
    query: type[BaseModel] | None = None
    task_type_query: frozenset[str] = frozenset()
    headers: tuple[str, ...] = ()
    public: bool = False
    #: False: the body may be left out (the bulk routes read no body as the empty filter).
    body_required: bool = True


def _anchored(pattern: str) -> str:
    return pattern if pattern.startswith("^") else f"^{pattern}$"


#: Path parameters by name, wherever a route template uses them.
PATH_PARAMETERS: Final[Mapping[str, Mapping[str, Any]]] = {
    "task_id": {
        "description": "A task id (400 unless shaped like one; 404 when no such task is visible).",
        # The pattern task_id_of() checks: the document cannot drift from the handlers.
        "schema": {"type": "string", "pattern": _anchored(TASK_ID_PATTERN.pattern)},
    },
    "name": {
        "description": "A schedule name.",
        "schema": {"type": "string", "pattern": _anchored(SCHEDULE_NAME_PATTERN)},
    },
}

#: Request headers operations may read, by name.
REQUEST_HEADERS: Final[Mapping[str, Mapping[str, Any]]] = {
    IDEMPOTENCY_HEADER: {
        "description": "A second submit with the same key (by the same principal) returns the "
        "first task instead of creating another. 400 unless one value of the same rule as a "
        "body's `idempotency_key`.",
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH,
            "pattern": IDEMPOTENCY_KEY_PATTERN,
        },
    },
    "If-None-Match": {
        "description": "ETags of the task the client has (weak comparison; `*` matches any): "
        "304 while one still matches.",
        "schema": {"type": "string"},
    },
    "Last-Event-ID": {
        "description": "The id of the last event received: the stream resumes after it.",
        "schema": {"type": "string"},
    },
}

#: Response headers, by name.
RESPONSE_HEADERS: Final[Mapping[str, Mapping[str, Any]]] = {
    "X-Request-ID": {
        "description": "The request's id (the client's when it sent a sane one): quote it to "
        "find the server's log lines.",
        "schema": {"type": "string"},
    },
    "Location": {
        "description": "Where the created or re-run resource is (a path with the mount prefix).",
        "schema": {"type": "string", "format": "uri-reference"},
    },
    "ETag": {
        "description": "Weak entity tag of the task's visible state; send it as If-None-Match.",
        "schema": {"type": "string"},
    },
    "Cache-Control": {"schema": {"type": "string"}},
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "WWW-Authenticate": {
        "description": 'The challenge: `Bearer realm="cam_tasks"` (with `error="invalid_token"` '
        "when a token was presented), or the host's own.",
        "schema": {"type": "string"},
    },
}

_SAFE_METHODS: Final = frozenset({hdrs.METH_GET, hdrs.METH_HEAD, hdrs.METH_OPTIONS})

#: Every error status an operation may document: its component name and when it happens.
ERROR_STATUSES: Final[Mapping[int, tuple[str, str]]] = {
    400: (
        "BadRequest",
        "Malformed: JSON body, query string (unknown, repeated or invalid keys), id or header.",
    ),
    401: ("Unauthorized", "No acceptable credentials."),
    403: ("Forbidden", "The principal's role may not do this."),
    404: ("NotFound", "No such resource, or one outside the caller's projects."),
    408: (
        "RequestTimeout",
        "The body did not all arrive within the API's `body_read_timeout_s`.",
    ),
    409: (
        "Conflict",
        "Illegal from the resource's current state (details say which), or a name is taken.",
    ),
    413: ("PayloadTooLarge", "The body is larger than the API's `max_body_bytes`."),
    415: ("UnsupportedMediaType", "The body is not `application/json` (UTF-8)."),
    422: (
        "UnprocessableContent",
        "Invalid fields (details per field, `loc` and `msg`), or an unknown task type "
        "(details list the known ones).",
    ),
    429: (
        "TooManyRequests",
        "Too many pending tasks, or submits faster than the principal's rate: come back after "
        "`Retry-After` seconds.",
    ),
    500: (
        "InternalServerError",
        "A bug: details carry the request id to quote. No internals are ever shown.",
    ),
    503: (
        "ServiceUnavailable",
        "The task store cannot be reached, or the service is stopping. Retry later; retry a "
        "submit only with an `Idempotency-Key` (a write that timed out may have been stored).",
    ),
}


def implied_errors(method: str, path: str, operation: Operation) -> set[int]:
    """The error statuses of ``operation`` served at ``method`` ``path``: its own, and those the
    middlewares and the request decoding give every operation of its shape (see the module
    docstring)."""
    statuses = set(operation.errors) | {500}
    if not operation.public:
        statuses.add(401)
        if method not in _SAFE_METHODS:
            statuses.add(403)
    if operation.body is not None:
        statuses |= {400, 408, 413, 415, 422}
    if operation.query is not None or "{task_id}" in path:
        statuses.add(400)
    return statuses


# The attribute of a handler function that holds its operations, by method (None: any method).
_OPERATIONS_ATTRIBUTE: Final = "__cam_tasks_operations__"

Handler = TypeVar("Handler", bound=Callable[..., Any])


def documented(operation: Operation, *, method: str | None = None) -> Callable[[Handler], Handler]:
    """Decorate a handler with the documentation of the route(s) it serves: of every method it
    is routed for, or only of ``method`` (for a handler routed for several methods that are
    documented apart). Returns the handler itself. ValueError when the handler already carries
    an operation for that method."""

    def attach(handler: Handler) -> Handler:
        operations: dict[str | None, Operation] = vars(handler).setdefault(
            _OPERATIONS_ATTRIBUTE, {}
        )
        key = None if method is None else method.upper()
        if key in operations:
            raise ValueError(f"{handler.__qualname__} is already documented for {key or 'all'}")
        operations[key] = operation
        return handler

    return attach


def operation_of(handler: object, method: str) -> Operation | None:
    """The documentation :func:`documented` attached to ``handler`` for ``method``, or None."""
    operations: Mapping[str | None, Operation] = getattr(handler, _OPERATIONS_ATTRIBUTE, {})
    return operations.get(method.upper(), operations.get(None))
