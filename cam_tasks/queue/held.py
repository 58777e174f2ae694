"""A task this process has claimed and not yet finished: its lease, context and local state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from cam_tasks.domain import Lease, Task
from cam_tasks.executor import TaskContext

__all__ = ["HeldTask", "StopReason"]


class StopReason(StrEnum):
    """Why the dispatcher interrupted an execution; decides the one write that follows."""

    CANCEL = "cancel"  # someone asked: record cancelled, never retry
    TIMEOUT = "timeout"  # timeout_s ran out: an error, retried per policy
    LOST = "lost"  # the lease is gone (rescued/deleted/cancelled elsewhere): write nothing
    SHUTDOWN = "shutdown"  # graceful stop: hand back as pending without spending the attempt


@dataclass(eq=False, slots=True)
class HeldTask:
    """Mutable, process-local bookkeeping for one claimed attempt (the Task itself is frozen)."""

    task: Task
    lease_until: datetime
    context: TaskContext
    execution: asyncio.Task[object] | None = None
    stop_reason: StopReason | None = None
    last_renewal: datetime | None = None
    finished: bool = False

    @property
    def lease(self) -> Lease:
        return self.task.lease

    def stop(self, reason: StopReason) -> None:
        """Interrupt the execution (if it started) for ``reason``; the first reason wins.

        A task still waiting in the buffer keeps the reason and is never started. An execution
        that already ended keeps its own outcome: it is only waiting to be recorded.
        """
        if self.execution is not None and self.execution.done():
            return
        if self.stop_reason is None:
            self.stop_reason = reason
        if reason is StopReason.CANCEL:
            self.context.request_cancel()
        if self.execution is not None and not self.execution.done():
            self.execution.cancel()
