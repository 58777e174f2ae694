"""The API's request and response models (pydantic), separate from the domain's.

Requests are ``extra="forbid"`` and strict about types where JSON is unambiguous (an int is not
a string), so a typo or a stray field is a 422 instead of being silently ignored. Responses
render datetimes as RFC 3339 UTC with a ``Z`` and millisecond precision.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictFloat,
    StrictInt,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
)

from cam_tasks.domain import (
    MAX_PAGE_SIZE,
    AttemptRecord,
    Priority,
    Task,
    TaskError,
    TaskFilter,
    TaskStatus,
)
from cam_tasks.service import MAX_IDEMPOTENCY_KEY_LENGTH

__all__ = [
    "ETA_MIN_PERCENT",
    "LIST_QUERY_KEYS",
    "MAX_BATCH_SIZE",
    "MAX_OFFSET",
    "SUBMIT_BATCH",
    "TASK_QUERY_KEYS",
    "ListTasksQuery",
    "SubmitTaskRequest",
    "SubmittedView",
    "TaskErrorView",
    "TaskListView",
    "TaskQuery",
    "TaskView",
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


#: An instant a client sends: RFC 3339 with an offset (or ``Z``), returned in UTC; one whose UTC
#: time falls outside years 1 to 9999 is refused like any other invalid value.
UtcInstant = Annotated[AwareDatetime, AfterValidator(_in_utc)]

# -- requests ---------------------------------------------------------------------------------


class SubmitTaskRequest(BaseModel):
    """Body of ``POST /tasks``. ``params`` are checked later by the executor's own model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(min_length=1, max_length=MAX_TYPE_LENGTH)
    params: dict[str, Any] = Field(default_factory=dict)
    priority: StrictInt | str = Priority.NORMAL
    run_at: UtcInstant | None = None
    delay_s: StrictFloat | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_retries: StrictInt | None = Field(default=None, ge=0)
    timeout_s: StrictFloat | None = Field(default=None, gt=0, allow_inf_nan=False)
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=MAX_IDEMPOTENCY_KEY_LENGTH
    )
    #: Accepted and ignored: a task records who submitted it, and in which project, from the
    #: authenticated principal, never from the body.
    created_by: Any = Field(default=None, exclude=True)
    project_id: Any = Field(default=None, exclude=True)


#: Most tasks one ``POST /tasks`` may submit as a JSON array.
MAX_BATCH_SIZE: Final = 1000
#: Body of ``POST /tasks`` as an array: 1 to ``MAX_BATCH_SIZE`` task objects.
SUBMIT_BATCH: Final = TypeAdapter(
    Annotated[list[SubmitTaskRequest], Field(min_length=1, max_length=MAX_BATCH_SIZE)]
)


#: The only query keys ``GET /tasks`` accepts.
LIST_QUERY_KEYS: Final = frozenset(
    {"type", "status", "created_by", "offset", "limit", "updated_since"}
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

    @field_validator("status", mode="before")
    @classmethod
    def _split_statuses(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",")]
        return value

    def to_filter(self) -> TaskFilter:
        return TaskFilter(
            types=None if self.type is None else frozenset({self.type}),
            statuses=self.status,
            created_by=self.created_by,
            updated_since=self.updated_since,
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


def _view_fields(task: Task, now: datetime) -> dict[str, Any]:
    """The fields of a :class:`TaskView` of ``task`` as plain data (datetimes, enums, dicts):
    the one place that says what a view shows, for :meth:`TaskView.of` and
    :meth:`TaskView.dump` alike."""
    running = task.status is TaskStatus.RUNNING
    return {
        "id": task.id,
        "type": task.type,
        "status": task.status,
        "params": task.params,
        "result": task.result,
        "error": _error_fields(task.error),
        "progress": task.progress,
        "message": task.message,
        "step": task.step,
        "total_steps": task.total_steps,
        "attempts": task.attempts,
        "max_retries": task.max_retries,
        "priority": task.priority,
        "priority_name": _priority_name(task.priority),
        "run_at": task.run_at,
        "timeout_s": task.timeout_s,
        "created_by": task.created_by,
        "project_id": task.project_id,
        "created_at": task.created_at,
        "started_at": task.started_at,
        "completed_at": task.completed_at,
        "updated_at": task.updated_at,
        # A retried task keeps no completed_at; only a running one counts up to now.
        "duration": task.duration_s(now if running else None),
        "eta_s": _eta_s(task, now) if running else None,
        "cancel_requested": task.cancel_requested,
        "history": [
            {
                "attempt": record.attempt,
                "started_at": record.started_at,
                "ended_at": record.ended_at,
                "outcome": record.outcome,
                "error": _error_fields(record.error),
            }
            for record in task.history
        ],
    }


def _json_mode(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with datetimes as the API writes them and enums as their values (in place)."""
    for name, value in fields.items():
        if isinstance(value, datetime):
            fields[name] = _rfc3339(value)
        elif isinstance(value, Enum):
            fields[name] = value.value
    return fields


class TaskView(BaseModel):
    """A task as the API shows it. ``duration`` is in seconds: start to completion, or start to
    now while running, null before the first start."""

    id: str
    type: str
    status: TaskStatus
    params: dict[str, Any]
    result: Any
    error: TaskErrorView | None
    progress: float
    message: str
    step: int | None
    total_steps: int | None
    attempts: int
    max_retries: int
    priority: int
    priority_name: str
    run_at: UtcDatetime
    timeout_s: float | None
    created_by: str
    project_id: str | None
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    completed_at: UtcDatetime | None
    updated_at: UtcDatetime
    duration: float | None
    #: Seconds left, extrapolated from the time since start and ``progress``; null unless
    #: running with at least ``ETA_MIN_PERCENT`` done.
    eta_s: float | None
    cancel_requested: bool
    history: list[AttemptView]

    @classmethod
    def of(cls, task: Task, *, now: datetime) -> TaskView:
        return cls(**_view_fields(task, now))

    @staticmethod
    def dump(task: Task, *, now: datetime) -> dict[str, Any]:
        """``TaskView.of(task, now=now).model_dump(mode="json")``, built directly: the API's
        most frequent answer, without a model to validate and serialise on every poll."""
        fields = _json_mode(_view_fields(task, now))
        for record in fields["history"]:
            _json_mode(record)
        return fields


class TaskListView(BaseModel):
    tasks: list[TaskView]
    total: int


class SubmittedView(BaseModel):
    task_id: str
    message: str = "task submitted"
