"""The API's request and response models (pydantic), separate from the domain's.

Requests are ``extra="forbid"`` and strict about types where JSON is unambiguous (an int is not
a string), so a typo or a stray field is a 422 instead of being silently ignored. Responses
render datetimes as RFC 3339 UTC with a ``Z`` and millisecond precision.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictFloat,
    StrictInt,
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
    "LIST_QUERY_KEYS",
    "MAX_OFFSET",
    "ListTasksQuery",
    "SubmitTaskRequest",
    "SubmittedView",
    "TaskErrorView",
    "TaskListView",
    "TaskView",
]

#: Largest accepted ``offset``: far past any useful page, and inside every integer type the
#: database driver accepts.
MAX_OFFSET: Final = 2**31 - 1
MAX_TYPE_LENGTH: Final = 200


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


UtcDatetime = Annotated[datetime, PlainSerializer(_rfc3339, return_type=str)]

# -- requests ---------------------------------------------------------------------------------


class SubmitTaskRequest(BaseModel):
    """Body of ``POST /tasks``. ``params`` are checked later by the executor's own model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(min_length=1, max_length=MAX_TYPE_LENGTH)
    params: dict[str, Any] = Field(default_factory=dict)
    priority: StrictInt | str = Priority.NORMAL
    run_at: AwareDatetime | None = None
    delay_s: StrictFloat | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_retries: StrictInt | None = Field(default=None, ge=0)
    timeout_s: StrictFloat | None = Field(default=None, gt=0, allow_inf_nan=False)
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=MAX_IDEMPOTENCY_KEY_LENGTH
    )


#: The only query keys ``GET /tasks`` accepts.
LIST_QUERY_KEYS: Final = frozenset({"type", "status", "offset", "limit"})


class ListTasksQuery(BaseModel):
    """The query of ``GET /tasks``: ``status`` may list several statuses, comma-separated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str | None = Field(default=None, min_length=1, max_length=MAX_TYPE_LENGTH)
    status: frozenset[TaskStatus] | None = None
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    limit: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE)

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
        )


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
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    completed_at: UtcDatetime | None
    updated_at: UtcDatetime
    duration: float | None
    cancel_requested: bool
    history: list[AttemptView]

    @classmethod
    def of(cls, task: Task, *, now: datetime) -> TaskView:
        running = task.status is TaskStatus.RUNNING
        return cls(
            id=task.id,
            type=task.type,
            status=task.status,
            params=task.params,
            result=task.result,
            error=TaskErrorView.of(task.error),
            progress=task.progress,
            message=task.message,
            step=task.step,
            total_steps=task.total_steps,
            attempts=task.attempts,
            max_retries=task.max_retries,
            priority=task.priority,
            priority_name=_priority_name(task.priority),
            run_at=task.run_at,
            timeout_s=task.timeout_s,
            created_by=task.created_by,
            created_at=task.created_at,
            started_at=task.started_at,
            completed_at=task.completed_at,
            updated_at=task.updated_at,
            # A retried task keeps no completed_at; only a running one counts up to now.
            duration=task.duration_s(now if running else None),
            cancel_requested=task.cancel_requested,
            history=[AttemptView.of(record) for record in task.history],
        )


class TaskListView(BaseModel):
    tasks: list[TaskView]
    total: int


class SubmittedView(BaseModel):
    task_id: str
    message: str = "task submitted"
