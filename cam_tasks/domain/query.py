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

    _utc = field_validator("updated_since")(lambda v: None if v is None else utc(v))


class TaskPage(BaseModel):
    """One page of a list, newest first, and the number of tasks matching the filter in all."""

    model_config = ConfigDict(frozen=True)

    tasks: list[Task]
    total: int = Field(ge=0)
