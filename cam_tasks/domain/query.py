"""Typed, allow-listed task queries: what a list request may ask the repository for."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cam_tasks.domain.clock import utc
from cam_tasks.domain.status import TaskStatus
from cam_tasks.domain.task import Task

__all__ = ["MAX_PAGE_SIZE", "TaskFilter", "TaskPage"]

MAX_PAGE_SIZE = 200


class TaskFilter(BaseModel):
    """Conjunction of optional criteria; ``None`` means 'any'. Sets mean 'one of'.

    Repositories translate each field into a fixed query shape themselves: no value from a
    request is ever used as a query document, so nothing a client sends becomes an operator.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    types: frozenset[str] | None = None
    statuses: frozenset[TaskStatus] | None = None
    created_by: str | None = None
    project_ids: frozenset[str] | None = None
    updated_since: datetime | None = None
    #: One of these queues (``Task.queue``).
    queues: frozenset[str] | None = None
    #: One of these ``error.type`` values (the last error of a failed or cancelled task).
    error_types: frozenset[str] | None = None
    #: ``completed_at < finished_before`` (only finished tasks have a ``completed_at``).
    finished_before: datetime | None = None
    #: ``completed_at >= finished_after``.
    finished_after: datetime | None = None
    #: ``created_at >= created_after`` (a statistics window's start).
    created_after: datetime | None = None
    #: ``created_at < created_before`` (a statistics window's end).
    created_before: datetime | None = None

    _utc = field_validator(
        "updated_since", "finished_before", "finished_after", "created_after", "created_before"
    )(lambda v: None if v is None else utc(v))

    def within(self, statuses: frozenset[TaskStatus]) -> TaskFilter | None:
        """This filter restricted to ``statuses`` (e.g. an action's legal sources), or None
        when no status is left (the filter and the statuses exclude each other)."""
        allowed = statuses if self.statuses is None else self.statuses & statuses
        return self.model_copy(update={"statuses": allowed}) if allowed else None

    def is_empty(self) -> bool:
        """True when no criterion is set (the filter matches every task)."""
        return all(getattr(self, name) is None for name in type(self).model_fields)


class TaskPage(BaseModel):
    """One page of a list, newest first, and the number of tasks matching the filter in all."""

    model_config = ConfigDict(frozen=True)

    tasks: list[Task]
    total: int = Field(ge=0)
