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
from datetime import datetime
from typing import Any

from cam_tasks.domain import (
    DEFAULT_QUEUE,
    Action,
    Lease,
    Progress,
    Task,
    TaskError,
    TaskFilter,
    TaskLostError,
    TaskPage,
    TaskStatus,
)
from cam_tasks.domain.events import TaskChange, TaskListener, written_action
from cam_tasks.domain.stats import TaskStats
from cam_tasks.repository.protocol import ClaimOrder, Completion, TaskRepository

__all__ = ["ObservedTaskRepository"]

logger = logging.getLogger(__name__)


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

    def _emit_task(self, requested: Action, task: Task) -> Task:
        # Listeners hear what the store did, not what was asked (a release that a pending
        # cancel request turned into a cancel is announced as acknowledge_cancel).
        self._emit(TaskChange(written_action(requested, task), task.id, task))
        return task

    # -- pass-through ------------------------------------------------------------------------

    async def initialize(self) -> None:
        await self.inner.initialize()

    async def close(self) -> None:
        await self.inner.close()

    async def ping(self) -> None:
        await self.inner.ping()

    async def expires_at(self, task_id: str) -> datetime | None:
        return await self.inner.expires_at(task_id)

    async def get(self, task_id: str) -> Task:
        return await self.inner.get(task_id)

    async def list(self, query: TaskFilter, *, offset: int, limit: int) -> TaskPage:
        return await self.inner.list(query, offset=offset, limit=limit)

    async def count_by_status(self, query: TaskFilter | None = None) -> Mapping[TaskStatus, int]:
        return await self.inner.count_by_status(query)

    async def next_run_at(
        self, *, types: Collection[str], queues: Collection[str] | None = None
    ) -> datetime | None:
        return await self.inner.next_run_at(types=types, queues=queues)

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
        return self._emit_task(Action.SUBMIT, await self.inner.insert(task))

    async def insert_many(self, tasks: Sequence[Task]) -> builtins.list[Task]:
        stored = await self.inner.insert_many(tasks)
        for task in stored:
            self._emit_task(Action.SUBMIT, task)
        return stored

    async def claim(
        self,
        *,
        types: Collection[str],
        owner: str,
        now: datetime,
        lease_s: float,
        order: ClaimOrder = "priority",
        queue: str = DEFAULT_QUEUE,
        exclude_keys: Collection[str] = (),
    ) -> Task | None:
        task = await self.inner.claim(
            types=types,
            owner=owner,
            now=now,
            lease_s=lease_s,
            order=order,
            queue=queue,
            exclude_keys=exclude_keys,
        )
        return None if task is None else self._emit_task(Action.CLAIM, task)

    async def claim_many(
        self,
        *,
        types: Collection[str],
        owner: str,
        now: datetime,
        lease_s: float,
        limit: int,
        order: ClaimOrder = "priority",
        queue: str = DEFAULT_QUEUE,
        exclude_keys: Collection[str] = (),
        key_room: Callable[[str], int | None] | None = None,
    ) -> builtins.list[Task]:
        tasks = await self.inner.claim_many(
            types=types,
            owner=owner,
            now=now,
            lease_s=lease_s,
            limit=limit,
            order=order,
            queue=queue,
            exclude_keys=exclude_keys,
            key_room=key_room,
        )
        for task in tasks:
            self._emit_task(Action.CLAIM, task)
        return tasks

    async def complete_many(
        self, completions: Sequence[Completion]
    ) -> builtins.list[Task | TaskLostError]:
        done = await self.inner.complete_many(completions)
        for task in done:
            if isinstance(task, Task):
                self._emit_task(Action.COMPLETE, task)
        return done

    async def unclaim(self, lease: Lease, *, now: datetime) -> Task:
        return self._emit_task(Action.UNCLAIM, await self.inner.unclaim(lease, now=now))

    async def heartbeat(
        self, lease: Lease, *, now: datetime, lease_s: float, progress: Progress | None
    ) -> bool:
        cancel_requested = await self.inner.heartbeat(
            lease, now=now, lease_s=lease_s, progress=progress
        )
        self._emit(TaskChange(Action.HEARTBEAT, lease.task_id, progress=progress))
        return cancel_requested

    async def complete(
        self, lease: Lease, *, now: datetime, result: Any, progress: Progress | None = None
    ) -> Task:
        task = await self.inner.complete(lease, now=now, result=result, progress=progress)
        return self._emit_task(Action.COMPLETE, task)

    async def fail(
        self, lease: Lease, *, now: datetime, error: TaskError, progress: Progress | None = None
    ) -> Task:
        task = await self.inner.fail(lease, now=now, error=error, progress=progress)
        return self._emit_task(Action.FAIL, task)

    async def retry_later(
        self, lease: Lease, *, now: datetime, run_at: datetime, error: TaskError
    ) -> Task:
        task = await self.inner.retry_later(lease, now=now, run_at=run_at, error=error)
        return self._emit_task(Action.RETRY_LATER, task)

    async def release(self, lease: Lease, *, now: datetime) -> Task:
        return self._emit_task(Action.RELEASE, await self.inner.release(lease, now=now))

    async def acknowledge_cancel(
        self,
        lease: Lease,
        *,
        now: datetime,
        result: Any = None,
        progress: Progress | None = None,
    ) -> Task:
        task = await self.inner.acknowledge_cancel(lease, now=now, result=result, progress=progress)
        return self._emit_task(Action.ACKNOWLEDGE_CANCEL, task)

    async def rescue_expired(self, *, now: datetime, limit: int = 100) -> builtins.list[Task]:
        rescued = await self.inner.rescue_expired(now=now, limit=limit)
        for task in rescued:
            self._emit_task(Action.RESCUE, task)
        return rescued

    async def request_cancel(self, task_id: str, *, now: datetime) -> Task:
        return self._emit_task(
            Action.REQUEST_CANCEL, await self.inner.request_cancel(task_id, now=now)
        )

    async def retry(self, task_id: str, *, now: datetime) -> Task:
        return self._emit_task(Action.RETRY, await self.inner.retry(task_id, now=now))

    async def delete(self, task_id: str) -> None:
        await self.inner.delete(task_id)
        self._emit(TaskChange(Action.DELETE, task_id))

    # -- bulk operator actions and per-queue counts (pass-through) ------------------------------

    # A bulk write reports a count, not the tasks it changed: nothing is announced for it.
    # Listeners that must see such changes (long polls, SSE) poll the store as they do for
    # changes made by other instances.
    async def retry_many(self, query: TaskFilter, *, now: datetime) -> int:
        return await self.inner.retry_many(query, now=now)

    async def cancel_many(self, query: TaskFilter, *, now: datetime) -> int:
        return await self.inner.cancel_many(query, now=now)

    async def delete_many(self, query: TaskFilter) -> int:
        return await self.inner.delete_many(query)

    async def count_by_queue(
        self, query: TaskFilter | None = None
    ) -> dict[str, dict[TaskStatus, int]]:
        return await self.inner.count_by_queue(query)
