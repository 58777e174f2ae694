"""Task statistics over a time window: the result every store returns, and the rules they share.

What is counted (the same on every backend, checked by ``tests/repository/test_stats_contract``):

- the **window** is the tasks *created* in ``[since, until)`` (optionally of some types); a task
  is counted in the status it has now, so pending and running tasks of the window appear too;
- **durations** are those of the window's *completed* tasks: ``completed_at - started_at``,
  i.e. the last attempt, as the task view's ``duration`` shows it (failed and cancelled tasks
  are left out: their duration says how long it took to give up, not how long the work takes);
- **percentiles** use the nearest-rank definition: p of n sorted values is the value at rank
  ``ceil(p * n)`` (1-based), always one of the durations. MongoDB's own ``$percentile``
  (t-digest, "approximate") agrees on small sets and is within its documented error on large
  ones;
- **success rate** is ``completed / (completed + failed)``; cancelled tasks are a decision, not
  an outcome, and active ones have none yet. ``None`` when nothing completed or failed.

The Mongo store computes all of it in the server (see :class:`MongoTaskRepository.stats`); the
memory store computes it in process with :func:`stats_of_tasks`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cam_tasks.domain.status import TaskStatus
from cam_tasks.domain.task import Task

__all__ = [
    "PERCENTILES",
    "DurationStats",
    "TaskStats",
    "TypeStats",
    "check_window",
    "duration_stats",
    "nearest_rank",
    "rank_of",
    "stats_of_tasks",
    "success_rate",
]

#: The percentiles every store reports, in this order.
PERCENTILES: tuple[float, float] = (0.5, 0.95)


def rank_of(count: int, p: float) -> int:
    """The 1-based nearest rank of percentile ``p`` (0 < p <= 1) among ``count`` values."""
    if count < 1:
        raise ValueError("no values")
    return min(count, max(1, math.ceil(p * count)))


def nearest_rank(ordered: Sequence[float], p: float) -> float:
    """Percentile ``p`` of ``ordered`` (ascending) by the nearest-rank definition."""
    return ordered[rank_of(len(ordered), p) - 1]


def success_rate(counts: Mapping[TaskStatus, int]) -> float | None:
    completed = counts.get(TaskStatus.COMPLETED, 0)
    decided = completed + counts.get(TaskStatus.FAILED, 0)
    return None if decided == 0 else completed / decided


def check_window(since: datetime, until: datetime) -> None:
    """ValueError unless ``since < until`` (both tz-aware)."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be timezone-aware")
    if not since < until:
        raise ValueError("since must be earlier than until")


@dataclass(frozen=True, slots=True)
class DurationStats:
    """Run time of the completed tasks of one type, in seconds (millisecond precision)."""

    count: int
    avg_s: float
    p50_s: float
    p95_s: float


@dataclass(frozen=True, slots=True)
class TypeStats:
    """One task type in the window: how many tasks are in each status (every status present)
    and, when some completed, how long they took."""

    type: str
    counts: Mapping[TaskStatus, int]
    durations: DurationStats | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def success_rate(self) -> float | None:
        return success_rate(self.counts)


@dataclass(frozen=True, slots=True)
class TaskStats:
    """Statistics of the tasks created in ``[since, until)``, one entry per type that has any,
    sorted by type."""

    since: datetime
    until: datetime
    types: tuple[TypeStats, ...] = field(default=())
    #: The same tasks by queue: ``queue -> status -> count`` (every status present), for the
    #: queues that have any. Empty when the store was not asked (a store's ``stats`` leaves it
    #: to the service, which counts it with ``count_by_queue``).
    queues: Mapping[str, Mapping[TaskStatus, int]] = field(default_factory=dict)

    @property
    def counts(self) -> dict[TaskStatus, int]:
        """Tasks of the window in each status, all types together (zeros included)."""
        totals = dict.fromkeys(TaskStatus, 0)
        for entry in self.types:
            for status, count in entry.counts.items():
                totals[status] += count
        return totals

    @property
    def total(self) -> int:
        return sum(entry.total for entry in self.types)

    @property
    def success_rate(self) -> float | None:
        return success_rate(self.counts)


def duration_stats(durations_ms: Iterable[int]) -> DurationStats | None:
    """Count, mean and nearest-rank percentiles of durations given in milliseconds."""
    ordered = sorted(durations_ms)
    if not ordered:
        return None
    p50, p95 = (nearest_rank(ordered, p) / 1000 for p in PERCENTILES)
    return DurationStats(
        count=len(ordered), avg_s=sum(ordered) / len(ordered) / 1000, p50_s=p50, p95_s=p95
    )


def _duration_ms(task: Task) -> int | None:
    if task.started_at is None or task.completed_at is None:
        return None
    # Stored times carry milliseconds: the difference is a whole number of them.
    return round((task.completed_at - task.started_at).total_seconds() * 1000)


def stats_of_tasks(
    tasks: Iterable[Task],
    *,
    since: datetime,
    until: datetime,
    types: Collection[str] | None = None,
    project_ids: Collection[str] | None = None,
) -> TaskStats:
    """The statistics of ``tasks`` (those in the window are picked here), by the rules above."""
    check_window(since, until)
    counts: defaultdict[str, dict[TaskStatus, int]] = defaultdict(
        lambda: dict.fromkeys(TaskStatus, 0)
    )
    durations: defaultdict[str, list[int]] = defaultdict(list)
    for task in tasks:
        if not since <= task.created_at < until or (types is not None and task.type not in types):
            continue
        if project_ids is not None and task.project_id not in project_ids:
            continue
        counts[task.type][task.status] += 1
        if task.status is TaskStatus.COMPLETED and (duration := _duration_ms(task)) is not None:
            durations[task.type].append(duration)
    entries = tuple(
        TypeStats(task_type, counts[task_type], duration_stats(durations[task_type]))
        for task_type in sorted(counts)
    )
    return TaskStats(since=since, until=until, types=entries)
