"""The statistics endpoints of the API (mounted with it, so they answer in its envelope):

- ``GET /tasks/stats?since=&until=&type=``: counts by status, success rate and durations of the
  tasks created in ``[since, until)`` (default: the last 24 h), per type and per queue,
  computed in the store;
- ``GET /queue/stats``: this instance's dispatcher (buffer, workers), the pending and running
  tasks in the store (all instances; in all and per queue), and how many tasks this instance
  completed in the last minute.

Task counts cover what the caller sees: every task for an admin, the tasks of its projects for
anyone else (the dispatcher's own figures are the instance's, whoever asks).

``/tasks/stats`` is a plain route, so aiohttp's router matches it before the dynamic
``/tasks/{task_id}`` whatever the registration order (a test checks it).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

from cam_tasks.domain import InvalidParamsError, TaskStatus
from cam_tasks.domain.stats import DurationStats, TaskStats, TypeStats
from cam_tasks.service.stats import StatsService, WorkerPool
from cam_tasks.web.auth import principal_of
from cam_tasks.web.envelope import success_response
from cam_tasks.web.errors import ApiError
from cam_tasks.web.operations import Operation, Reply, documented
from cam_tasks.web.requests import parse_query, reject_query
from cam_tasks.web.schemas import MAX_TYPE_LENGTH, UtcDatetime, UtcInstant

__all__ = [
    "STATS_KEY",
    "STATS_QUERY_KEYS",
    "WORKERS_KEY",
    "QueueStatsView",
    "TaskStatsQuery",
    "TaskStatsView",
    "stats_routes",
]


#: The :class:`StatsService` the handlers call.
STATS_KEY: Final = web.AppKey("cam_tasks.stats", StatsService)
#: The local dispatcher (its figures for ``/queue/stats``), as the service layer's
#: :class:`~cam_tasks.service.stats.WorkerPool`.
WORKERS_KEY: Final = web.AppKey("cam_tasks.workers", WorkerPool)

#: The only query keys ``GET /tasks/stats`` accepts.
STATS_QUERY_KEYS: Final = frozenset({"since", "until", "type"})

stats_routes = web.RouteTableDef()


# -- requests ---------------------------------------------------------------------------------


class TaskStatsQuery(BaseModel):
    """The query of ``GET /tasks/stats``: RFC 3339 times with a zone (``Z`` or an offset,
    ``+`` written ``%2B``), one task type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    since: UtcInstant | None = None
    until: UtcInstant | None = None
    type: str | None = Field(default=None, min_length=1, max_length=MAX_TYPE_LENGTH)


# -- responses --------------------------------------------------------------------------------


def _counts(counts: dict[TaskStatus, int] | Any) -> dict[str, int]:
    return {status.value: int(counts.get(status, 0)) for status in TaskStatus}


class DurationView(BaseModel):
    """Run time of the completed tasks, in seconds: ``p50``/``p95`` are nearest-rank
    percentiles (each one of the durations)."""

    count: int
    avg: float
    p50: float
    p95: float

    @classmethod
    def of(cls, durations: DurationStats | None) -> DurationView | None:
        if durations is None:
            return None
        return cls(
            count=durations.count, avg=durations.avg_s, p50=durations.p50_s, p95=durations.p95_s
        )


class TypeStatsView(BaseModel):
    type: str
    counts: dict[str, int]
    total: int
    success_rate: float | None
    duration_s: DurationView | None

    @classmethod
    def of(cls, entry: TypeStats) -> TypeStatsView:
        return cls(
            type=entry.type,
            counts=_counts(entry.counts),
            total=entry.total,
            success_rate=entry.success_rate,
            duration_s=DurationView.of(entry.durations),
        )


class QueueCountsView(BaseModel):
    queue: str
    counts: dict[str, int]
    total: int


class TaskStatsView(BaseModel):
    """Tasks created in ``[since, until)``: every status counted (zeros included), all types
    together, per type and per queue. ``success_rate`` is completed / (completed + failed),
    null when neither happened."""

    since: UtcDatetime
    until: UtcDatetime
    counts: dict[str, int]
    total: int
    success_rate: float | None
    types: list[TypeStatsView]
    queues: list[QueueCountsView] = Field(description="The same tasks by queue, by name.")

    @classmethod
    def of(cls, stats: TaskStats) -> TaskStatsView:
        return cls(
            since=stats.since,
            until=stats.until,
            counts=_counts(stats.counts),
            total=stats.total,
            success_rate=stats.success_rate,
            types=[TypeStatsView.of(entry) for entry in stats.types],
            queues=[
                QueueCountsView(queue=queue, counts=_counts(counts), total=sum(counts.values()))
                for queue, counts in sorted(stats.queues.items())
            ],
        )


class BufferView(BaseModel):
    size: int = Field(description="Claimed tasks waiting for a worker now.")
    capacity: int = Field(description="Most claimed tasks that wait beyond the running ones.")


class WorkersView(BaseModel):
    busy: int
    total: int


class ThroughputView(BaseModel):
    completed: int = Field(description="Tasks this instance completed in the window.")
    window_s: float
    per_s: float


class QueueStatsView(BaseModel):
    """This instance's queue, and the active tasks in the store (all instances)."""

    owner: str
    running: bool
    buffer: BufferView
    workers: WorkersView
    held: int = Field(description="Tasks this instance has claimed and not finished.")
    tasks: dict[str, int] = Field(description="Pending and running tasks in the store.")
    queues: dict[str, dict[str, int]] = Field(
        description="Pending and running tasks in the store per queue (queues with any)."
    )
    throughput: ThroughputView


# -- handlers ---------------------------------------------------------------------------------


@stats_routes.get("/tasks/stats")
@documented(
    Operation(
        "task_stats",
        "statistics",
        "Task statistics over a window",
        "Counts by status, success rate and durations of the tasks created in `[since, until)` "
        "(default: the last 24 h), all types together and per type, computed in the store; "
        "only the tasks the caller may see.",
        (Reply(200, "The statistics.", TaskStatsView),),
        errors=frozenset({503}),
        query=TaskStatsQuery,
    )
)
async def task_stats(request: web.Request) -> web.Response:
    """Task statistics over a window, computed in the store."""
    query = parse_query(request, TaskStatsQuery, STATS_QUERY_KEYS)
    service = request.app[STATS_KEY]
    try:
        stats = await service.task_stats(
            since=query.since,
            until=query.until,
            types=None if query.type is None else frozenset({query.type}),
            principal=principal_of(request),
        )
    except InvalidParamsError as exc:  # e.g. a since later than the default until (now)
        raise ApiError(400, "bad_request", "malformed query", exc.details) from None
    return success_response(TaskStatsView.of(stats).model_dump(mode="json"))


@stats_routes.get("/queue/stats")
@documented(
    Operation(
        "queue_stats",
        "statistics",
        "This instance's queue",
        "Buffer and workers of the instance that answers, pending and running tasks in the "
        "store (all instances), throughput over the last minute. Takes no query (400).",
        (Reply(200, "The queue's figures.", QueueStatsView),),
        errors=frozenset({400, 503}),
    )
)
async def queue_stats(request: web.Request) -> web.Response:
    """This instance's queue and the store's pending/running counts."""
    reject_query(request)
    service = request.app[STATS_KEY]
    dispatcher = request.app[WORKERS_KEY].stats()
    principal = principal_of(request)
    active = await service.active_counts(principal=principal)
    by_queue = await service.active_counts_by_queue(principal=principal)
    meter = service.throughput
    completed = meter.completed()
    view = QueueStatsView(
        owner=dispatcher.owner,
        running=dispatcher.running,
        buffer=BufferView(size=dispatcher.buffered, capacity=dispatcher.buffer_size),
        workers=WorkersView(busy=dispatcher.busy_workers, total=dispatcher.worker_count),
        held=dispatcher.held,
        tasks={status.value: count for status, count in active.items()},
        queues={
            queue: {status.value: count for status, count in counts.items()}
            for queue, counts in by_queue.items()
        },
        throughput=ThroughputView(
            completed=completed, window_s=meter.window_s, per_s=completed / meter.window_s
        ),
    )
    return success_response(view.model_dump(mode="json"))
