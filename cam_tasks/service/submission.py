"""TaskSubmission: one task to submit, as :meth:`TaskService.submit_many` takes a batch of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cam_tasks.domain import Priority

__all__ = ["TaskSubmission"]


@dataclass(frozen=True, slots=True)
class TaskSubmission:
    """The arguments of one :meth:`TaskService.submit`, as a value: ``task_type`` and
    ``params``, then the same options with the same defaults and the same checks."""

    task_type: str
    params: Mapping[str, Any] = field(default_factory=dict)
    priority: int | str = Priority.NORMAL
    run_at: datetime | None = None
    delay_s: float | None = None
    max_retries: int | None = None
    timeout_s: float | None = None
    created_by: str = "system"
    project_id: str | None = None
    idempotency_key: str | None = None
