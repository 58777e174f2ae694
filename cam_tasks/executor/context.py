"""TaskContext: how a running executor reports progress and learns it should stop."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cam_tasks.domain import Progress

__all__ = ["TaskContext"]

#: Where every attempt starts; frozen, so one instance serves them all (no validation per task).
_NO_PROGRESS = Progress()
#: Progress is kept to a tenth of a percent: finer digits are noise to a reader.
_PERCENT_DECIMALS = 1


class TaskContext:
    """Handed to ``execute`` for one attempt of one task.

    Progress calls are synchronous and cheap: they only update memory. The dispatcher writes the
    latest state at most once per heartbeat interval (coalescing any number of calls into one
    write) and always once more at the end, so executors may report as often as they like.

    Not thread-safe; use it from the executor's own event loop.
    """

    __slots__ = (
        "_cancel_requested",
        "_dirty",
        "_progress",
        "attempt",
        "max_attempts",
        "partial_result",
        "project_id",
        "run_at",
        "task_id",
        "task_type",
    )

    def __init__(
        self,
        *,
        task_id: str,
        task_type: str,
        attempt: int,
        max_attempts: int,
        run_at: datetime,
        project_id: str | None = None,
    ) -> None:
        self.task_id = task_id
        self.task_type = task_type
        self.attempt = attempt
        self.max_attempts = max_attempts
        self.run_at = run_at
        #: The project of the task (what it writes, the asset inventory, is scoped by it).
        self.project_id = project_id
        #: Set by an executor to keep partial work when the task is cancelled.
        self.partial_result: Any = None
        self._progress = _NO_PROGRESS
        self._dirty = False
        self._cancel_requested = False

    # -- executor side ---------------------------------------------------------------------

    def report(
        self,
        percent: float | None = None,
        message: str | None = None,
        *,
        step: int | None = None,
        total_steps: int | None = None,
        step_name: str | None = None,
    ) -> None:
        """Record progress. ``percent`` is clamped to [0, 100], rounded to one decimal (what
        a reader can use: ``27.6``, not ``27.586206896551722``) and never goes back within an
        attempt; when omitted but ``step``/``total_steps`` are known it is derived from them.
        ``step_name`` says in words what the current step does (shown beside ``step`` /
        ``total_steps``). Unchanged fields keep their last value."""
        current = self._progress
        step = current.step if step is None else max(0, step)
        total_steps = current.total_steps if total_steps is None else max(0, total_steps)
        if percent is None and step is not None and total_steps:
            percent = 100.0 * min(step, total_steps) / total_steps
        new_percent = (
            current.percent
            if percent is None
            else round(min(100.0, max(0.0, float(percent))), _PERCENT_DECIMALS)
        )
        updated = Progress(
            percent=max(current.percent, new_percent),
            message=current.message if message is None else message,
            step=step,
            total_steps=total_steps,
            step_name=current.step_name if step_name is None else step_name,
        )
        if updated != current:
            self._progress = updated
            self._dirty = True

    @property
    def progress(self) -> Progress:
        return self._progress

    @property
    def cancel_requested(self) -> bool:
        """True once someone asked for this task to be cancelled. The dispatcher also cancels
        the executor's coroutine; this flag is for executors that want to stop at a clean
        boundary first (``if ctx.cancel_requested: ctx.partial_result = …; break``)."""
        return self._cancel_requested

    # -- dispatcher side ---------------------------------------------------------------------

    def request_cancel(self) -> None:
        self._cancel_requested = True

    @property
    def has_new_progress(self) -> bool:
        return self._dirty

    def restore_progress(self) -> None:
        """Mark the current progress unwritten again (its write failed)."""
        self._dirty = True

    def take_progress(self) -> Progress | None:
        """The progress to write, or None when nothing changed since the last call."""
        if not self._dirty:
            return None
        self._dirty = False
        return self._progress
