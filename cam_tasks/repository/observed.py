"""A TaskRepository wrapper that tells listeners about every change made through it.

The composition root wraps the store once and hands the wrapper to the dispatcher and the
service alike, so every change this process makes is announced in process: long polls and
server-sent events wake at once, metrics count transitions, nothing polls for local changes.
Changes made by *other* instances are not seen here; whoever needs them reads the store.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cam_tasks.domain import Lease, Progress, Task, TaskError, TaskFilter, TaskPage, TaskStatus
from cam_tasks.domain.stats import TaskStats
from cam_tasks.repository.protocol import ClaimOrder, TaskRepository

__all__ = ["ObservedTaskRepository", "TaskChange", "TaskListener"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TaskChange:
    """One successful write. ``task`` is the task as written, except for ``heartbeat`` (which
    returns no task: ``progress`` is what it wrote, if anything) and ``delete`` (gone)."""

    action: str  # insert | claim | heartbeat | complete | fail | retry_later | release |
    #              acknowledge_cancel | rescue | request_cancel | retry | delete
    task_id: str
    task: Task | None = None
    progress: Progress | None = None


TaskListener = Callable[[TaskChange], None]

#: Attempt-ending writes that the store turns into a cancel when one was requested.
_MAY_END_CANCELLED = frozenset({"retry_later", "release", "rescue"})


class ObservedTaskRepository:
    """Delegates to ``inner`` and calls each listener after every successful write.

    Listeners are synchronous and must be cheap (set an event, bump a counter); one that raises
    is logged and does not affect the write or the other listeners. Reads pass straight through.
    """

    def __init__(self, inner: TaskRepository) -> None:
        self.inner = inner
        self._listeners: list[TaskListener] = []

    def add_listener(self, listener: TaskListener) -> None:
        self._listeners.append(listener)

    def _emit(self, change: TaskChange) -> None:
        for listener in self._listeners:
            try:
                listener(change)
            except Exception:
                logger.exception("task listener failed", extra={"task_id": change.task_id})

    def _emit_task(self, action: str, task: Task) -> Task:
        if action in _MAY_END_CANCELLED and task.status is TaskStatus.CANCELLED:
            # A cancel request was pending when the attempt ended: the store recorded the
            # cancel instead, and listeners must hear what happened, not what was asked.
            action = "acknowledge_cancel"
        self._emit(TaskChange(action, task.id, task))
        return task

    # -- pass-through ------------------------------------------------------------------------

    async def initialize(self) -> None:
        await self.inner.initialize()

    async def close(self) -> None:
        await self.inner.close()

    async def ping(self) -> None:
        await self.inner.ping()

    async def get(self, task_id: str) -> Task:
        return await self.inner.get(task_id)

    async def list(self, query: TaskFilter, *, offset: int, limit: int) -> TaskPage:
        return await self.inner.list(query, offset=offset, limit=limit)

    async def count_by_status(self, query: TaskFilter | None = None) -> Mapping[TaskStatus, int]:
        return await self.inner.count_by_status(query)

    async def next_run_at(self, *, types: Collection[str]) -> datetime | None:
        return await self.inner.next_run_at(types=types)

    async def stats(
        self,
        *,
        since: datetime,
        until: datetime,
        types: Collection[str] | None = None,
        project_ids: Collection[str] | None = None,
    ) -> TaskStats:
        return await self.inner.stats(
            since=since, until=until, types=types, project_ids=project_ids
        )

    # -- writes --------------------------------------------------------------------------------

    async def insert(self, task: Task) -> Task:
        return self._emit_task("insert", await self.inner.insert(task))

    async def insert_many(self, tasks: Sequence[Task]) -> builtins.list[Task]:
        stored = await self.inner.insert_many(tasks)
        for task in stored:
            self._emit_task("insert", task)
        return stored

    async def claim(
        self,
        *,
        types: Collection[str],
        owner: str,
        now: datetime,
        lease_s: float,
        order: ClaimOrder = "priority",
    ) -> Task | None:
        task = await self.inner.claim(
            types=types, owner=owner, now=now, lease_s=lease_s, order=order
        )
        return None if task is None else self._emit_task("claim", task)

    async def heartbeat(
        self, lease: Lease, *, now: datetime, lease_s: float, progress: Progress | None
    ) -> bool:
        cancel_requested = await self.inner.heartbeat(
            lease, now=now, lease_s=lease_s, progress=progress
        )
        self._emit(TaskChange("heartbeat", lease.task_id, progress=progress))
        return cancel_requested

    async def complete(
        self, lease: Lease, *, now: datetime, result: Any, progress: Progress | None = None
    ) -> Task:
        task = await self.inner.complete(lease, now=now, result=result, progress=progress)
        return self._emit_task("complete", task)

    async def fail(
        self, lease: Lease, *, now: datetime, error: TaskError, progress: Progress | None = None
    ) -> Task:
        task = await self.inner.fail(lease, now=now, error=error, progress=progress)
        return self._emit_task("fail", task)

    async def retry_later(
        self, lease: Lease, *, now: datetime, run_at: datetime, error: TaskError
    ) -> Task:
        task = await self.inner.retry_later(lease, now=now, run_at=run_at, error=error)
        return self._emit_task("retry_later", task)

    async def release(self, lease: Lease, *, now: datetime) -> Task:
        return self._emit_task("release", await self.inner.release(lease, now=now))

    async def acknowledge_cancel(
        self,
        lease: Lease,
        *,
        now: datetime,
        result: Any = None,
        progress: Progress | None = None,
    ) -> Task:
        task = await self.inner.acknowledge_cancel(lease, now=now, result=result, progress=progress)
        return self._emit_task("acknowledge_cancel", task)

    async def rescue_expired(self, *, now: datetime, limit: int = 100) -> builtins.list[Task]:
        rescued = await self.inner.rescue_expired(now=now, limit=limit)
        for task in rescued:
            self._emit_task("rescue", task)
        return rescued

    async def request_cancel(self, task_id: str, *, now: datetime) -> Task:
        return self._emit_task("request_cancel", await self.inner.request_cancel(task_id, now=now))

    async def retry(self, task_id: str, *, now: datetime) -> Task:
        return self._emit_task("retry", await self.inner.retry(task_id, now=now))

    async def delete(self, task_id: str) -> None:
        await self.inner.delete(task_id)
        self._emit(TaskChange("delete", task_id))
