"""The API's request and response models (pydantic), separate from the domain's.

Requests are ``extra="forbid"`` and strict about types where JSON is unambiguous (an int is not
a string), so a typo or a stray field is a 422 instead of being silently ignored. Responses
render datetimes as RFC 3339 UTC with a ``Z`` and millisecond precision.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any, Final, Optional

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictFloat,
    StringConstraints,
    TypeAdapter,
    WithJsonSchema,
    create_model,
    field_validator,
)
from pydantic_core import PydanticCustomError

from cam_tasks.domain import (
    MAX_DELAY_S,
    MAX_KEY_LENGTH,
    MAX_PAGE_SIZE,
    MAX_RETRIES,
    MAX_TIMEOUT_S,
    QUEUE_NAME_PATTERN,
    SUBMIT_OPTIONS,
    AttemptRecord,
    Priority,
    Task,
    TaskError,
    TaskFilter,
    TaskStatus,
)
from cam_tasks.service import IDEMPOTENCY_KEY_PATTERN, MAX_IDEMPOTENCY_KEY_LENGTH

__all__ = [
    "ETA_MIN_PERCENT",
    "LIST_QUERY_KEYS",
    "MAX_BATCH_SIZE",
    "MAX_OFFSET",
    "SUBMIT_BATCH",
    "TASK_QUERY_KEYS",
    "VIEW_CLOCK_FIELDS",
    "VIEW_SOURCE_FIELDS",
    "ListTasksQuery",
    "PriorityChoice",
    "SubmitTaskRequest",
    "SubmittedView",
    "TaskErrorView",
    "TaskListView",
    "TaskProgressView",
    "TaskQuery",
    "TaskResultView",
    "TaskView",
    "view_clock_fields",
]

#: Largest accepted ``offset``: far past any useful page, and inside every integer type the
#: database driver accepts.
MAX_OFFSET: Final = 2**31 - 1
MAX_TYPE_LENGTH: Final = 200


# Recently formatted instants: a polled task shows the same five to seven times on every
# answer, and a list page shares most of them. Bounded: emptied when full.
_RFC3339: dict[datetime, str] = {}
_RFC3339_MAX = 4096


def _rfc3339(value: datetime) -> str:
    text = _RFC3339.get(value)  # equal instants (in any zone) have one UTC text
    if text is None:
        if len(_RFC3339) >= _RFC3339_MAX:
            _RFC3339.clear()
        text = value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        _RFC3339[value] = text
    return text


UtcDatetime = Annotated[
    datetime,
    PlainSerializer(_rfc3339, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]


def _in_utc(value: datetime) -> datetime:
    # 0001-01-01T00:00+14:00 parses, but is before the first instant Python can hold in UTC.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the range of representable instants") from None


#: The start of an RFC 3339 date-time: what the document promises and all an instant may be.
_RFC3339_START: Final = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]")


def _rfc3339_text(value: Any) -> Any:
    # pydantic would also read a number ("0.5", 1700000000) as Unix seconds; the document says
    # date-time, so the server says the same.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339_START.match(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, like 2026-03-01T12:00:00Z")
    return value


#: An instant a client sends: RFC 3339 with an offset (or ``Z``), returned in UTC; one whose UTC
#: time falls outside years 1 to 9999 is refused like any other invalid value, and so is a
#: number (never read as Unix seconds).
UtcInstant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_in_utc)]

# -- requests ---------------------------------------------------------------------------------


class _SubmitTaskBody(BaseModel):
    """What ``POST /tasks`` takes beside the task's submit options (those come from the domain
    model: see :data:`SubmitTaskRequest`)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        # run_at and delay_s exclude each other (a null is as good as absent).
        json_schema_extra={
            "not": {
                "required": ["run_at", "delay_s"],
                "properties": {"run_at": {"type": "string"}, "delay_s": {"type": "number"}},
            }
        },
    )

    type: str = Field(min_length=1, max_length=MAX_TYPE_LENGTH)
    params: dict[str, Any] = Field(default_factory=dict)
    delay_s: StrictFloat | None = Field(default=None, ge=0, le=MAX_DELAY_S, allow_inf_nan=False)

    def options(self) -> dict[str, Any]:
        """The submit options given (``TaskService.submit``'s keywords), absent ones left out."""
        values = self.__dict__
        return {
            name: values[name] for name in (*SUBMIT_OPTIONS, "delay_s") if values[name] is not None
        }


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c}]" for c in word)


def _json_integer(value: Any) -> Any:
    # JSON has one number type: 3.0 is the integer 3 (JSON Schema says so too), "3" and true
    # are no integers at all.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


#: An integer as JSON Schema reads one: a number without a fraction (``3`` or ``3.0``).
JsonInt = Annotated[int, BeforeValidator(_json_integer)]

#: A priority as requests give it: a level's number or its name (any case, spaces around
#: allowed), exactly what the service accepts, so the document says no more and no less.
PriorityChoice = Annotated[
    JsonInt | str,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "enum": [int(p) for p in Priority]},
                {
                    "type": "string",
                    "pattern": r"^\s*("
                    + "|".join(_any_case(p.name.lower()) for p in Priority)
                    + r")\s*$",
                },
            ],
            "description": "A number ("
            + ", ".join(f"{int(p)} {p.name.lower()}" for p in Priority)
            + ") or a name.",
        },
        mode="validation",
    ),
]

#: Submit options whose JSON form differs from their domain field (strict JSON types, names
#: for priorities, RFC 3339 instants, bounds). Every other option of
#: :data:`~cam_tasks.domain.SUBMIT_OPTIONS` is taken as its :class:`Task` field is declared,
#: optional: a field added to the task and named there is accepted here without a change.
_OPTION_FORMS: Final[dict[str, tuple[Any, Any]]] = {
    "priority": (PriorityChoice, Priority.NORMAL),
    "run_at": (UtcInstant | None, None),
    # JsonInt with bounds, the bounds before the validator: pydantic documents them as
    # minimum/maximum only there (on JsonInt itself they would come out as "ge"/"le").
    "max_retries": (
        Annotated[int, Field(ge=0, le=MAX_RETRIES), BeforeValidator(_json_integer)] | None,
        None,
    ),
    "timeout_s": (
        StrictFloat | None,
        Field(default=None, gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False),
    ),
    # "" opts out of the key the executor would derive: no minimum length here.
    "unique_key": (
        str | None,
        Field(
            default=None,
            max_length=MAX_KEY_LENGTH,
            description="At most one pending or running task of the project holds it: a "
            'duplicate submit returns that task (200, `deduplicated`). `""` opts out of '
            "the executor's own key.",
        ),
    ),
    "concurrency_key": (
        str | None,
        Field(
            default=None,
            max_length=MAX_KEY_LENGTH,
            description="Tasks sharing it run at most its limit at once, across instances. "
            '`""` opts out of the executor\'s own key.',
        ),
    ),
    "idempotency_key": (
        Annotated[
            str,
            StringConstraints(min_length=1, max_length=MAX_IDEMPOTENCY_KEY_LENGTH),
            # The service judges it (a JSON Schema pattern, not one pydantic's engine reads).
            WithJsonSchema(
                {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH,
                    "pattern": IDEMPOTENCY_KEY_PATTERN,
                }
            ),
        ]
        | None,
        None,
    ),
}


def _option_form(name: str) -> tuple[Any, Any]:
    form = _OPTION_FORMS.get(name)
    if form is not None:
        return form
    info = Task.model_fields[name]
    declared = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return (Optional[declared], Field(default=None, description=info.description))  # noqa: UP045


#: Body of ``POST /tasks``: ``type``, ``params`` (checked later by the executor's own model)
#: and the task's submit options. Requests are ``extra="forbid"``.
_SUBMIT_FIELDS: Final[dict[str, Any]] = {name: _option_form(name) for name in SUBMIT_OPTIONS}
SubmitTaskRequest = create_model(
    "SubmitTaskRequest",
    __base__=_SubmitTaskBody,
    __doc__="Body of ``POST /tasks``. ``params`` are checked later by the executor's own model.",
    **_SUBMIT_FIELDS,
)


#: Most tasks one ``POST /tasks`` may submit as a JSON array.
MAX_BATCH_SIZE: Final = 1000
#: Body of ``POST /tasks`` as an array: 1 to ``MAX_BATCH_SIZE`` task objects.
SUBMIT_BATCH: Final = TypeAdapter(
    Annotated[list[SubmitTaskRequest], Field(min_length=1, max_length=MAX_BATCH_SIZE)]
)


#: The only query keys ``GET /tasks`` accepts.
LIST_QUERY_KEYS: Final = frozenset(
    {"type", "status", "created_by", "offset", "limit", "updated_since", "queue"}
)
#: Longest ``created_by`` a list may filter on (principal names and ``schedule:<name>`` are
#: far shorter).
MAX_CREATED_BY_LENGTH: Final = 200


class ListTasksQuery(BaseModel):
    """The query of ``GET /tasks``: ``status`` may list several statuses, comma-separated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str | None = Field(default=None, min_length=1, max_length=MAX_TYPE_LENGTH)
    status: frozenset[TaskStatus] | None = None
    created_by: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CREATED_BY_LENGTH,
        description="Only the tasks submitted by this principal (`schedule:<name>`: the tasks "
        "that schedule fired).",
    )
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    limit: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE)
    #: Only tasks written at or after this instant (RFC 3339 with an offset or ``Z``).
    updated_since: UtcInstant | None = None
    queue: str | None = Field(
        default=None, pattern=QUEUE_NAME_PATTERN, description="Only the tasks of this queue."
    )

    @field_validator("status", mode="before")
    @classmethod
    def _split_statuses(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return None  # `status=`: no status named, so no status filter
            return [part.strip() for part in value.split(",")]
        return value

    def to_filter(self) -> TaskFilter:
        return TaskFilter(
            types=None if self.type is None else frozenset({self.type}),
            statuses=self.status,
            created_by=self.created_by,
            updated_since=self.updated_since,
            queues=None if self.queue is None else frozenset({self.queue}),
        )


#: The only query keys ``GET /tasks/{id}`` accepts.
TASK_QUERY_KEYS: Final = frozenset({"wait_s"})


class TaskQuery(BaseModel):
    """The query of ``GET /tasks/{id}``: ``wait_s`` makes it a long poll of at most 60 s."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    wait_s: float | None = Field(default=None, gt=0, le=60, allow_inf_nan=False)


# -- responses --------------------------------------------------------------------------------


class TaskErrorView(BaseModel):
    type: str
    message: str

    @classmethod
    def of(cls, error: TaskError | None) -> TaskErrorView | None:
        return None if error is None else cls(type=error.type, message=error.message)


class AttemptView(BaseModel):
    """One finished attempt. The owner (a process identity) is deliberately left out."""

    attempt: int
    started_at: UtcDatetime
    ended_at: UtcDatetime
    outcome: str
    error: TaskErrorView | None

    @classmethod
    def of(cls, record: AttemptRecord) -> AttemptView:
        return cls(
            attempt=record.attempt,
            started_at=record.started_at,
            ended_at=record.ended_at,
            outcome=record.outcome,
            error=TaskErrorView.of(record.error),
        )


def _priority_name(priority: int) -> str:
    try:
        return Priority(priority).name.lower()
    except ValueError:
        return str(priority)


#: Progress below this tells too little about the pace for an estimate of the time left.
ETA_MIN_PERCENT: Final = 5.0


def _eta_s(task: Task, now: datetime) -> float | None:
    percent = task.progress
    if task.started_at is None or not ETA_MIN_PERCENT <= percent < 100:
        return None
    elapsed_s = (now - task.started_at).total_seconds()
    if elapsed_s <= 0:
        return None
    return round(elapsed_s * (100 - percent) / percent, 1)


def _error_fields(error: TaskError | None) -> dict[str, str] | None:
    return None if error is None else {"type": error.type, "message": error.message}


#: Task fields a view never shows: the lease (a process identity and its deadline), the
#: idempotency key (namespaced per principal in storage) and the submitter's trace context
#: (tracing plumbing). Every other field of :class:`Task` is shown as it is declared, so a new
#: field appears in every view without a change here.
_HIDDEN: Final = frozenset({"owner", "lease_until", "idempotency_key", "trace_context"})
_SHOWN: Final = tuple(name for name in Task.model_fields if name not in _HIDDEN)


def _view_fields(task: Task, now: datetime) -> dict[str, Any]:
    """The fields of a :class:`TaskView` of ``task`` as plain data (datetimes, enums, dicts):
    the one place that says what a view shows, used by GET, lists and server-sent events."""
    values = task.__dict__
    fields = {name: values[name] for name in _SHOWN}
    fields["error"] = _error_fields(task.error)
    fields["progress"] = round(task.progress, 1)
    fields["history"] = [
        {
            "attempt": record.attempt,
            "started_at": record.started_at,
            "ended_at": record.ended_at,
            "outcome": record.outcome,
            "error": _error_fields(record.error),
        }
        for record in task.history
    ]
    fields["priority_name"] = _priority_name(task.priority)
    fields["duration"], fields["eta_s"] = _times(task, now)
    return fields


def _times(task: Task, now: datetime) -> tuple[float | None, float | None]:
    """``duration`` and ``eta_s`` of ``task`` as of ``now``."""
    # A retried task keeps no completed_at; only a running one counts up to now.
    if task.status is TaskStatus.RUNNING:
        return task.duration_s(now), _eta_s(task, now)
    return task.duration_s(None), None


#: The view's fields that move without a visible change: ``updated_at`` (renewed by every lease
#: heartbeat), and ``duration`` and ``eta_s`` of a running task (computed from the clock).
VIEW_CLOCK_FIELDS: Final = ("updated_at", "duration", "eta_s")
#: The task fields a view is computed from, but ``updated_at``: two tasks with equal values
#: here have equal views but for :data:`VIEW_CLOCK_FIELDS` (which :func:`view_clock_fields`
#: gives).
VIEW_SOURCE_FIELDS: Final = tuple(name for name in _SHOWN if name != "updated_at")


def view_clock_fields(task: Task, now: datetime) -> dict[str, Any]:
    """The :data:`VIEW_CLOCK_FIELDS` of ``task``'s view as of ``now``, in their JSON form: what
    :meth:`TaskView.dump` would show for them."""
    duration, eta_s = _times(task, now)
    return {"updated_at": _rfc3339(task.updated_at), "duration": duration, "eta_s": eta_s}


def _json_mode(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with datetimes as the API writes them and enums as their values (in place)."""
    for name, value in fields.items():
        if isinstance(value, datetime):
            fields[name] = _rfc3339(value)
        elif isinstance(value, Enum):
            fields[name] = value.value
    return fields


class _TaskViewBase(BaseModel):
    """A task as the API shows it: every field of :class:`Task` but the hidden ones, then
    ``priority_name``, ``duration`` (seconds: start to completion, or start to now while
    running, null before the first start) and ``eta_s`` (seconds left, extrapolated from the
    time since start and ``progress``; null unless running with at least ``ETA_MIN_PERCENT``
    done)."""

    @classmethod
    def of(cls, task: Task, *, now: datetime) -> _TaskViewBase:
        return cls(**_view_fields(task, now))

    @staticmethod
    def dump(task: Task, *, now: datetime) -> dict[str, Any]:
        """``TaskView.of(task, now=now).model_dump(mode="json")``, built directly: the API's
        one renderer of a task (GET, lists, server-sent events), without a model to validate
        and serialise on every poll."""
        fields = _json_mode(_view_fields(task, now))
        for record in fields["history"]:
            _json_mode(record)
        return fields


#: How a view declares a Task field whose shown form differs from its stored one.
_VIEW_FORMS: Final[dict[Any, Any]] = {
    datetime: UtcDatetime,
    datetime | None: UtcDatetime | None,
    TaskError | None: TaskErrorView | None,
    tuple[AttemptRecord, ...]: list[AttemptView],
}

#: The view of a task (its JSON schema is the OpenAPI ``TaskView``), derived from the fields of
#: :class:`Task`.
_VIEW_FIELDS: Final[dict[str, Any]] = {
    **{
        name: (_VIEW_FORMS.get(info.annotation, info.annotation), ...)
        for name, info in Task.model_fields.items()
        if name not in _HIDDEN
    },
    "priority_name": (str, ...),
    "duration": (float | None, ...),
    "eta_s": (float | None, ...),
}
TaskView = create_model("TaskView", __base__=_TaskViewBase, **_VIEW_FIELDS)


class TaskListView(BaseModel):
    tasks: list[TaskView]
    total: int


class SubmittedView(BaseModel):
    task_id: str
    message: str = "task submitted"
    #: True when the submit joined the active task holding its ``unique_key`` (answered 200).
    deduplicated: bool = False


def _view_subset(name: str, doc: str, fields: tuple[str, ...]) -> type[BaseModel]:
    """A model of some of :data:`TaskView`'s fields, declared as the view declares them."""
    shown = TaskView.model_fields
    return create_model(  # type: ignore[call-overload,no-any-return]
        name, __doc__=doc, **{field: (shown[field].annotation, ...) for field in fields}
    )


#: ``GET /tasks/{id}/progress``: what a progress bar needs, and nothing that grows (no params,
#: result or history), so polling it stays cheap.
TaskProgressView = _view_subset(
    "TaskProgressView",
    "A task's progress: status, percent, message, step fields and the estimated time left.",
    ("id", "status", "progress", "message", "step", "total_steps", "step_name", "eta_s"),
)
#: ``GET /tasks/{id}/result``: how the task ended (``result`` and ``error`` stay null before).
TaskResultView = _view_subset(
    "TaskResultView",
    "A task's outcome: status, result, error and when it ended.",
    ("id", "status", "result", "error", "completed_at"),
)
