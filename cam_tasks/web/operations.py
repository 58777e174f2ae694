"""What each route of the API does, written down once for its OpenAPI document.

:data:`OPERATIONS` holds one :class:`Operation` per (method, route path), the path relative to
where the API is mounted, exactly as the router spells it. :mod:`cam_tasks.web.openapi` walks the
router and documents every route it finds here, so the document never names a route that is not
served (no schedules without a schedule service), and a route added without an entry here is
missing from it, which ``tests/web/test_openapi.py`` reports.

Schemas are not written here: an operation names the pydantic models (or ``TypeAdapter``) its
handler validates with and answers with, and the document is generated from them. Two sources
are resolved at generation time from the live :class:`~cam_tasks.executor.ExecutorRegistry`:
:class:`ExecutorParams` (the params model of one task type) and the requests listed in
:data:`TYPED_REQUESTS`, whose ``type`` and ``params`` become one variant per registered executor.

Errors are partly implied, the same way the middlewares apply them: every operation may answer
500; every operation that is not public 401 (and 403 when it writes: a viewer may only read);
one with a body 400, 413, 415 and 422; one with a query or a ``{task_id}`` 400. ``errors`` lists
the others the operation's handler and service can raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, TypeAdapter

from cam_tasks.domain.schedule import SCHEDULE_NAME_PATTERN
from cam_tasks.service import MAX_IDEMPOTENCY_KEY_LENGTH
from cam_tasks.web.provider_routes import ProviderListView
from cam_tasks.web.routes import IDEMPOTENCY_HEADER, TASK_ID_PATTERN
from cam_tasks.web.schedule_schemas import (
    CreateScheduleRequest,
    ListSchedulesQuery,
    ScheduleFiredView,
    ScheduleListView,
    ScheduleView,
    UpdateScheduleRequest,
)
from cam_tasks.web.schemas import (
    SUBMIT_BATCH,
    ListTasksQuery,
    SubmitTaskRequest,
    SubmittedView,
    TaskListView,
    TaskQuery,
    TaskView,
)
from cam_tasks.web.stats_routes import QueueStatsView, TaskStatsQuery, TaskStatsView

__all__ = [
    "OPERATIONS",
    "PATH_PARAMETERS",
    "REQUEST_HEADERS",
    "RESPONSE_HEADERS",
    "TYPED_REQUESTS",
    "Content",
    "ExecutorParams",
    "OneOf",
    "Operation",
    "Reply",
    "Schema",
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
        "first task instead of creating another. 400 unless one value of printable characters.",
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH,
            "pattern": r"^[\x20-\x7e]+$",
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

_SUBMITTED = Reply(
    202,
    "Submitted: the task is stored and pending; `Location` is the task.",
    SubmittedView,
    headers={"Location": True},
)
_TASK_ERRORS = frozenset({404, 409, 503})
_SCHEDULE_ERRORS = frozenset({403, 404, 503})
_SUBMIT_DESCRIPTION = (
    "The body *is* the `{type}` executor's params; field errors are located relative to it "
    '(`loc: ["asset_types"]`). `created_by` and `project_id` are accepted and ignored: a task '
    "records them from the authenticated principal."
)
_VIEWS = "every server-sent event's `data` is the task view (`TaskView`)"

#: The documentation of every route, by (method, path relative to the API prefix).
OPERATIONS: Final[Mapping[tuple[str, str], Operation]] = {
    ("POST", "/tasks/sync-assets"): Operation(
        "submit_sync_assets",
        "tasks",
        "Submit a sync_assets task",
        _SUBMIT_DESCRIPTION.format(type="sync_assets"),
        (_SUBMITTED,),
        errors=frozenset({429, 503}),
        body=ExecutorParams("sync_assets"),
        headers=(IDEMPOTENCY_HEADER,),
    ),
    ("POST", "/tasks/discover-assets"): Operation(
        "submit_discover_assets",
        "tasks",
        "Submit a discover_assets task",
        _SUBMIT_DESCRIPTION.format(type="discover_assets"),
        (_SUBMITTED,),
        errors=frozenset({429, 503}),
        body=ExecutorParams("discover_assets"),
        headers=(IDEMPOTENCY_HEADER,),
    ),
    ("POST", "/tasks"): Operation(
        "submit_task",
        "tasks",
        "Submit a task of any registered type, or a batch of them",
        'One object submits one task (`params` are the type\'s, under `["params", …]` in field '
        "errors); `Location` is the task. A JSON array of 1 to 1000 such objects submits them "
        "all in one store round trip: all are validated first (nothing is stored when one is "
        "refused; `loc` starts with the item's index), and the answer lists `{task_id, "
        "message}` in the items' order, without `Location`. A batch takes no `Idempotency-Key` "
        "header (422): give each item its own `idempotency_key`. `run_at` and `delay_s` are "
        "exclusive; `priority` is `low | normal | high | urgent` or `0..3`.",
        (
            Reply(
                202,
                "Submitted: one task (with `Location`) or, for an array, one entry per item.",
                OneOf((SubmittedView, TypeAdapter(list[SubmittedView]))),
                headers={"Location": False},
            ),
        ),
        errors=frozenset({429, 503}),
        body=OneOf((SubmitTaskRequest, SUBMIT_BATCH)),
        headers=(IDEMPOTENCY_HEADER,),
    ),
    ("GET", "/tasks"): Operation(
        "list_tasks",
        "tasks",
        "List tasks, newest first",
        "Filters combine; `status` takes one status or a comma-separated list; `updated_since` "
        "returns only the tasks written at or after that instant (RFC 3339 with an offset; "
        "write `+` as `%2B`). Unknown, repeated or bracketed keys are a 400.",
        (Reply(200, "One page of tasks and how many matched.", TaskListView),),
        errors=frozenset({503}),
        query=ListTasksQuery,
        task_type_query=frozenset({"type"}),
    ),
    ("GET", "/tasks/{task_id}"): Operation(
        "get_task",
        "tasks",
        "Get one task",
        "With a weak `ETag`; `If-None-Match` answers 304 while it still matches. `wait_s` makes "
        "it a long poll: the answer comes as soon as the task differs from the client's "
        "`If-None-Match` (without one: from the task as it was when the request arrived), or "
        "after `wait_s` (304 if the client's tag still matches).",
        (
            Reply(
                200,
                "The task.",
                TaskView,
                headers={"ETag": True, "Cache-Control": True},
            ),
            Reply(
                304,
                "Not modified: the client's ETag still matches.",
                content=Content.EMPTY,
                headers={"ETag": True, "Cache-Control": True},
            ),
        ),
        errors=frozenset({404, 503}),
        query=TaskQuery,
        headers=("If-None-Match",),
    ),
    ("POST", "/tasks/{task_id}/cancel"): Operation(
        "cancel_task",
        "tasks",
        "Cancel a task",
        "A pending task is cancelled at once; a running one is asked to stop "
        "(`cancel_requested`) and ends `cancelled` within one heartbeat. 409 once it ended.",
        (Reply(200, "The task after the request.", TaskView),),
        errors=_TASK_ERRORS,
    ),
    ("POST", "/tasks/{task_id}/retry"): Operation(
        "retry_task",
        "tasks",
        "Re-run a failed or cancelled task",
        "The task runs again from a fresh start; its history is kept. 409 unless it failed or "
        "was cancelled.",
        (Reply(202, "The task, pending again.", TaskView, headers={"Location": True}),),
        errors=_TASK_ERRORS | {429},
    ),
    ("DELETE", "/tasks/{task_id}"): Operation(
        "delete_task",
        "tasks",
        "Delete a finished task",
        "409 while it is pending or running.",
        (Reply(200, "Deleted: `data` is null."),),
        errors=_TASK_ERRORS,
    ),
    ("GET", "/tasks/{task_id}/events"): Operation(
        "task_events",
        "tasks",
        "Follow a task as server-sent events",
        "Events: `status` (first, then when the lifecycle changes), `progress` (only progress "
        f"changed) and `done` (once, after a terminal `status`; the stream then ends); {_VIEWS}. "
        "Ids name the state the client has; `Last-Event-ID` resumes without repeating or "
        "losing the current state. Keep-alive comments every 15 s. See docs/frontend.md.",
        (
            Reply(
                200,
                "The event stream: each event's `data` is the task view as JSON.",
                TaskView,
                content=Content.EVENT_STREAM,
                events=("status", "progress", "done"),
            ),
            Reply(
                204,
                "The client already has the `done` event of the task's current state: "
                "an EventSource stops reconnecting.",
                content=Content.EMPTY,
            ),
        ),
        errors=frozenset({404, 503}),
        headers=("Last-Event-ID",),
    ),
    ("GET", "/tasks/stats"): Operation(
        "task_stats",
        "statistics",
        "Task statistics over a window",
        "Counts by status, success rate and durations of the tasks created in `[since, until)` "
        "(default: the last 24 h), all types together and per type, computed in the store; "
        "only the tasks the caller may see.",
        (Reply(200, "The statistics.", TaskStatsView),),
        errors=frozenset({503}),
        query=TaskStatsQuery,
    ),
    ("GET", "/queue/stats"): Operation(
        "queue_stats",
        "statistics",
        "This instance's queue",
        "Buffer and workers of the instance that answers, pending and running tasks in the "
        "store (all instances), throughput over the last minute. Takes no query (400).",
        (Reply(200, "The queue's figures.", QueueStatsView),),
        errors=frozenset({400, 503}),
    ),
    ("GET", "/providers"): Operation(
        "list_providers",
        "tasks",
        "What can be synced",
        "Every configured asset provider: its `name` (a task's `provider`), its `kind` "
        "(`static`, `aws`, `aliyun`, or a plug-in's) and the `asset_types` it lists. "
        "Takes no query (400).",
        (Reply(200, "The providers, sorted by name.", ProviderListView),),
        errors=frozenset({400}),
    ),
    ("POST", "/schedules"): Operation(
        "create_schedule",
        "schedules",
        "Create a schedule",
        "Needs an admin. `expression` is a cron expression read in `timezone` (an IANA zone); "
        "`params` are checked by the type's executor (422 with field details). 409 when the "
        "name is taken.",
        (Reply(201, "Created.", ScheduleView, headers={"Location": True}),),
        errors=frozenset({403, 409, 503}),
        body=CreateScheduleRequest,
    ),
    ("GET", "/schedules"): Operation(
        "list_schedules",
        "schedules",
        "List schedules by name",
        "Needs an admin. `active=true|false` filters.",
        (Reply(200, "One page of schedules and how many matched.", ScheduleListView),),
        errors=frozenset({403, 503}),
        query=ListSchedulesQuery,
    ),
    ("GET", "/schedules/{name}"): Operation(
        "get_schedule",
        "schedules",
        "Get one schedule",
        "Needs an admin.",
        (Reply(200, "The schedule.", ScheduleView),),
        errors=_SCHEDULE_ERRORS,
    ),
    ("PATCH", "/schedules/{name}"): Operation(
        "update_schedule",
        "schedules",
        "Change a schedule",
        "Needs an admin. Changes the fields given; absent or null fields keep their value, "
        "`params` replace the stored params whole. A changed expression or zone restarts the "
        "timetable from the next fire time after now.",
        (Reply(200, "The schedule after the change.", ScheduleView),),
        errors=_SCHEDULE_ERRORS | {409},
        body=UpdateScheduleRequest,
    ),
    ("PUT", "/schedules/{name}"): Operation(
        "put_schedule",
        "schedules",
        "Change a schedule (as PATCH)",
        "The same partial update as PATCH, as the seed API spells it.",
        (Reply(200, "The schedule after the change.", ScheduleView),),
        errors=_SCHEDULE_ERRORS | {409},
        body=UpdateScheduleRequest,
    ),
    ("DELETE", "/schedules/{name}"): Operation(
        "delete_schedule",
        "schedules",
        "Delete a schedule",
        "Needs an admin. The tasks it fired stay.",
        (Reply(200, "Deleted: `data` is null."),),
        errors=_SCHEDULE_ERRORS,
    ),
    ("POST", "/schedules/{name}/pause"): Operation(
        "pause_schedule",
        "schedules",
        "Pause a schedule",
        "Needs an admin. Idempotent.",
        (Reply(200, "The schedule, paused.", ScheduleView),),
        # Re-validated as a whole: its executor may have gone or changed its params since.
        errors=_SCHEDULE_ERRORS | {409, 422},
    ),
    ("POST", "/schedules/{name}/resume"): Operation(
        "resume_schedule",
        "schedules",
        "Resume a schedule",
        "Needs an admin. Fires again from the next fire time after now. Idempotent.",
        (Reply(200, "The schedule, active.", ScheduleView),),
        errors=_SCHEDULE_ERRORS | {409, 422},
    ),
    ("POST", "/schedules/{name}/run"): Operation(
        "run_schedule",
        "schedules",
        "Fire one task now",
        "Needs an admin. The timetable does not move.",
        (
            Reply(
                202,
                "Submitted; `Location` is the task.",
                ScheduleFiredView,
                headers={"Location": True},
            ),
        ),
        errors=_SCHEDULE_ERRORS | {422, 429},
    ),
    ("GET", "/openapi.json"): Operation(
        "openapi_document",
        "documentation",
        "This document",
        "OpenAPI 3.1, generated from the models the handlers use and the executors registered "
        "in this process. Public.",
        (Reply(200, "The OpenAPI document.", content=Content.DOCUMENT),),
        public=True,
    ),
    ("GET", "/docs"): Operation(
        "api_docs_page",
        "documentation",
        "This document as a page",
        "A self-contained page that reads `openapi.json` and shows it. Public.",
        (Reply(200, "The page.", content=Content.HTML),),
        public=True,
    ),
}
