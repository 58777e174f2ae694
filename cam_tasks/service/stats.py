"""Statistics use cases: task statistics over a time window, and the store's side of the queue.

Everything here reads the store or counts local changes; nothing writes. The dispatcher's own
figures (workers, buffer) are the queue layer's: :class:`WorkerPool` is what a front end reads of
them, a protocol the dispatcher satisfies structurally, so the web layer never imports the queue
layer (the composition root hands it the dispatcher).
"""

from __future__ import annotations

import builtins
import dataclasses
from collections import deque
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from cam_tasks.domain import Action, Clock, InvalidParamsError, TaskChange, TaskFilter, TaskStatus
from cam_tasks.domain.principal import Principal
from cam_tasks.domain.stats import TaskStats
from cam_tasks.repository.protocol import TaskRepository

__all__ = [
    "DEFAULT_STATS_WINDOW_S",
    "THROUGHPUT_WINDOW_S",
    "StatsService",
    "ThroughputMeter",
    "WorkerPool",
    "WorkerPoolStats",
]

#: The window of :meth:`StatsService.task_stats` when the caller gives no ``since``.
DEFAULT_STATS_WINDOW_S = 24 * 3600.0
#: How far back :class:`ThroughputMeter` counts.
THROUGHPUT_WINDOW_S = 60.0

_ACTIVE = frozenset({TaskStatus.PENDING, TaskStatus.RUNNING})


class WorkerPoolStats(Protocol):
    """A snapshot of one process's worker pool (``cam_tasks.queue.DispatcherStats``)."""

    @property
    def owner(self) -> str:
        """The pool's owner id (one per process incarnation)."""

    @property
    def running(self) -> bool:
        """Whether the pool is claiming and running tasks."""

    @property
    def worker_count(self) -> int:
        """Worker coroutines of the pool."""

    @property
    def busy_workers(self) -> int:
        """Workers running a task now."""

    @property
    def buffer_size(self) -> int:
        """Most claimed tasks that wait beyond the running ones."""

    @property
    def buffered(self) -> int:
        """Claimed tasks waiting for a worker now."""

    @property
    def held(self) -> int:
        """Tasks this process has claimed and not finished."""


class WorkerPool(Protocol):
    """What a front end reads of the local dispatcher: a snapshot of its figures. Cheap and
    synchronous (no store access)."""

    def stats(self) -> WorkerPoolStats: ...


class ThroughputMeter:
    """Counts the tasks this process completed in the last ``window_s`` seconds.

    A listener of :class:`ObservedTaskRepository`: it sees the completions written by this
    process only (each instance reports its own; add them up across instances). Memory is one
    timestamp per completion in the window. Not thread-safe: call it from the event loop.
    """

    def __init__(self, *, clock: Clock, window_s: float = THROUGHPUT_WINDOW_S) -> None:
        if not window_s > 0:
            raise ValueError("window_s must be > 0")
        self.window_s = window_s
        self._clock = clock
        self._window = timedelta(seconds=window_s)
        self._completed: deque[datetime] = deque()

    def __call__(self, change: TaskChange) -> None:
        if change.action is Action.COMPLETE:
            now = self._clock.now()
            self._completed.append(now)
            self._forget(now)

    def _forget(self, now: datetime) -> None:
        oldest = now - self._window
        while self._completed and self._completed[0] <= oldest:
            self._completed.popleft()

    def completed(self) -> int:
        """Tasks completed by this process in the last ``window_s`` seconds."""
        self._forget(self._clock.now())
        return len(self._completed)


def _problem(loc: str, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": [loc], "msg": msg, "type": kind}


def _projects(principal: Principal | None) -> frozenset[str] | None:
    """What ``principal`` sees: None for every task (no principal, or an admin)."""
    if principal is None or principal.is_admin:
        return None
    return frozenset(principal.projects)


class StatsService:
    """Task statistics and queue counts over one repository.

    Scoping: with a ``principal`` that is not an admin, only the tasks of its projects are
    counted (as :class:`TaskService` lists them), so counts reveal nothing of other projects.

    Errors: :class:`InvalidParamsError` for a bad window; :class:`DatabaseUnavailableError`
    when the store cannot be reached. Safe to call from many coroutines at once.
    """

    def __init__(
        self,
        repository: TaskRepository,
        *,
        clock: Clock,
        throughput: ThroughputMeter | None = None,
        default_window_s: float = DEFAULT_STATS_WINDOW_S,
    ) -> None:
        if not default_window_s > 0:
            raise ValueError("default_window_s must be > 0")
        self._repository = repository
        self._clock = clock
        self.throughput = throughput or ThroughputMeter(clock=clock)
        self._default_window = timedelta(seconds=default_window_s)

    @property
    def clock(self) -> Clock:
        return self._clock

    async def task_stats(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        types: Collection[str] | None = None,
        principal: Principal | None = None,
    ) -> TaskStats:
        """Statistics of the tasks created in ``[since, until)``: ``until`` defaults to now,
        ``since`` to one default window (24 h) before ``until``. Counted in the store (an
        aggregation), by the rules of :mod:`cam_tasks.domain.stats`.

        An empty or reversed window (``since >= until``) counts nothing. Raises
        :class:`InvalidParamsError` for naive datetimes.
        """
        problems: builtins.list[dict[str, Any]] = []
        for loc, value in (("since", since), ("until", until)):
            if value is not None and value.utcoffset() is None:
                problems.append(_problem(loc, "must be a timezone-aware datetime", "timezone"))
        if problems:
            raise InvalidParamsError("invalid statistics window", problems)
        end = until or self._clock.now()
        start = since or end - self._default_window
        if not start < end:
            # A window that ends where (or before) it starts holds no instant, so it counts no
            # task: answered as such rather than refused, since both bounds are valid instants.
            return TaskStats(since=start, until=end)
        projects = _projects(principal)
        stats = await self._repository.stats(
            since=start, until=end, types=types, project_ids=projects
        )
        window = TaskFilter(
            created_after=start,
            created_before=end,
            types=None if types is None else frozenset(types),
            project_ids=projects,
        )
        return dataclasses.replace(stats, queues=await self._repository.count_by_queue(window))

    async def active_counts(
        self, *, principal: Principal | None = None
    ) -> Mapping[TaskStatus, int]:
        """Pending and running tasks in the store (all instances; those ``principal`` sees):
        one indexed count."""
        query = TaskFilter(statuses=_ACTIVE, project_ids=_projects(principal))
        counts = await self._repository.count_by_status(query)
        return {
            status: counts.get(status, 0) for status in (TaskStatus.PENDING, TaskStatus.RUNNING)
        }

    async def active_counts_by_queue(
        self, *, principal: Principal | None = None
    ) -> dict[str, dict[TaskStatus, int]]:
        """Pending and running tasks in the store per queue (all instances; those
        ``principal`` sees), queues without any left out: one aggregation."""
        query = TaskFilter(statuses=_ACTIVE, project_ids=_projects(principal))
        counts = await self._repository.count_by_queue(query)
        return {
            queue: {status: per_queue.get(status, 0) for status in sorted(_ACTIVE)}
            for queue, per_queue in sorted(counts.items())
        }
