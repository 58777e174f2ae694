"""Prometheus metrics of one cam_tasks runtime, in a registry of its own.

Each :class:`TaskMetrics` owns a :class:`prometheus_client.CollectorRegistry` (never the global
default), so several runtimes in one process, and the tests, never collide; a host with its own
``/metrics`` can read :attr:`TaskMetrics.registry` instead of mounting ours.

Where the figures come from:

- **counters and histograms of task changes** are fed by an :class:`ObservedTaskRepository`
  listener (:meth:`TaskMetrics.task_changed`): every write *this process* makes. Each change is
  written by exactly one process, so summing a counter over all instances counts each event
  once;
- **claim latency and heartbeat failures** come from the dispatcher's observer hook;
- **pending and running tasks** are counted in the store when Prometheus scrapes (one indexed
  count of those two statuses, :meth:`render`): they are the same on every instance (take the
  ``max``, not the ``sum``). When the store does not answer, those samples are left out and
  ``cam_tasks_database_up`` is 0;
- **workers and buffer** are read from the dispatcher at scrape time.

No label takes a value from a request: ``type`` is a registered executor type, ``queue`` a
declared queue (a task of any other queue is counted under :data:`OTHER_QUEUE`, so a submit
cannot grow the series), the others come from fixed sets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Final, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, Metric
from prometheus_client.exposition import choose_encoder

from cam_tasks._version import __version__
from cam_tasks.domain import (
    DEFAULT_QUEUE,
    Action,
    DatabaseUnavailableError,
    TaskChange,
    TaskFilter,
    TaskStatus,
)
from cam_tasks.queue.dispatcher import DispatcherStats
from cam_tasks.repository.protocol import TaskRepository

__all__ = [
    "CLAIM_BUCKETS_S",
    "DURATION_BUCKETS_S",
    "OTHER_QUEUE",
    "QUEUE_WAIT_BUCKETS_S",
    "RETRY_REASONS",
    "TaskMetrics",
]

logger = logging.getLogger(__name__)

#: Task run times: seconds to an hour (the jobs are long: syncs of cloud inventories).
DURATION_BUCKETS_S: Final = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
#: One claim round trip to the store.
CLAIM_BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
#: From a task being due to a worker claiming it.
QUEUE_WAIT_BUCKETS_S: Final = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)
#: ``reason`` of ``cam_tasks_tasks_retried_total``.
RETRY_REASONS: Final = ("error", "lease_expired", "operator")

#: The ``queue`` label of a task whose queue is not declared (bounded cardinality).
OTHER_QUEUE: Final = "_other"

_ACTIVE = frozenset({TaskStatus.PENDING, TaskStatus.RUNNING})
# Attempt-ending writes whose history record gives the attempt's run time, and its outcome.
_OUTCOMES: Final = {
    Action.COMPLETE: "completed",
    Action.FAIL: "failed",
    Action.ACKNOWLEDGE_CANCEL: "cancelled",
    Action.RETRY_LATER: "retry",
}


#: Metric types for which prometheus_client adds a ``<name>_created`` series of its own.
_WITH_CREATED: Final = frozenset({"counter", "histogram", "summary", "gaugehistogram"})


class _RegistryWithoutCreated(CollectorRegistry):
    """A registry that leaves out the ``_created`` series prometheus_client adds to counters
    and histograms (a creation timestamp per label set). In the Prometheus text format each
    becomes a second gauge family beside its metric, doubling the series for nothing a
    dashboard of this runtime uses.

    prometheus_client only switches them off process-wide (``disable_created_metrics()`` or
    ``PROMETHEUS_DISABLE_CREATED_SERIES``), which would change a host's own metrics too; this
    filter applies to this runtime's registry alone, whoever encodes it.
    """

    def collect(self) -> Iterable[Metric]:
        for metric in super().collect():
            if metric.type in _WITH_CREATED:
                created = f"{metric.name}_created"
                # collect() builds fresh Metric objects per call: filtering in place is safe.
                metric.samples = [s for s in metric.samples if s.name != created]
            yield metric


_Metric = TypeVar("_Metric", Counter, Histogram)


class _Children(Generic[_Metric]):
    """``metric.labels(*values)``, each label set looked up once: ``labels()`` validates and
    locks on every call (about 1.5 µs), and the task listener calls it for every write.

    Holds the same children the metric does, so it grows no faster than the metric's own
    series. Only for metrics that are never cleared or have children removed (a cached child
    would outlive its series).
    """

    def __init__(self, metric: _Metric) -> None:
        self._metric: _Metric = metric
        self._children: dict[tuple[str, ...], _Metric] = {}

    def __call__(self, *values: str) -> _Metric:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class TaskMetrics:
    """The metrics of one runtime (see the module docstring for every source).

    ``types`` are the registered task types and ``queues`` the declared queues: the task
    counters (labelled ``type`` and ``queue``) start at 0 for each pair, so ``rate()`` works
    from the first scrape. ``store_timeout_s`` bounds the scrape's count of active tasks.
    Implements the dispatcher's observer (:class:`cam_tasks.queue.dispatcher.DispatcherObserver`).
    """

    def __init__(
        self,
        repository: TaskRepository,
        *,
        types: Iterable[str] = (),
        queues: Iterable[str] = (DEFAULT_QUEUE,),
        owner: str = "",
        store_timeout_s: float = 2.0,
    ) -> None:
        if not store_timeout_s > 0:
            raise ValueError("store_timeout_s must be > 0")
        self._repository = repository
        self._store_timeout_s = store_timeout_s
        self._queues = frozenset(queues)
        #: Every metric of this runtime, without ``_created`` series (see
        #: :class:`_RegistryWithoutCreated`).
        self.registry: CollectorRegistry = _RegistryWithoutCreated()
        registry = self.registry
        self.info = Info("cam_tasks", "This cam_tasks runtime.", registry=registry)
        self.info.info({"version": __version__, "owner": owner})
        by_type = ("type",)
        by_queue = ("type", "queue")
        self.submitted = Counter(
            "cam_tasks_tasks_submitted", "Tasks stored by a submit.", by_queue, registry=registry
        )
        self.completed = Counter(
            "cam_tasks_tasks_completed", "Tasks that completed.", by_queue, registry=registry
        )
        self.failed = Counter(
            "cam_tasks_tasks_failed",
            "Tasks that failed for good (attempts used up, a permanent error, or a lease "
            "expired on the last attempt).",
            by_queue,
            registry=registry,
        )
        self.cancelled = Counter(
            "cam_tasks_tasks_cancelled", "Tasks cancelled.", by_queue, registry=registry
        )
        self.retried = Counter(
            "cam_tasks_tasks_retried",
            "Tasks sent back to pending for another attempt: after an error (error), after "
            "their owner's lease expired (lease_expired), or by an operator (operator).",
            ("type", "queue", "reason"),
            registry=registry,
        )
        self.duration = Histogram(
            "cam_tasks_task_duration_seconds",
            "Run time of each attempt that ended in this process, by how it ended "
            "(completed, failed, cancelled, retry).",
            ("type", "outcome"),
            buckets=DURATION_BUCKETS_S,
            registry=registry,
        )
        self.queue_wait = Histogram(
            "cam_tasks_queue_wait_seconds",
            "From a task being due (run_at) to this process claiming it.",
            by_type,
            buckets=QUEUE_WAIT_BUCKETS_S,
            registry=registry,
        )
        self.claim_latency = Histogram(
            "cam_tasks_claim_latency_seconds",
            "Round trip of one claim to the store, whether it found a task (claimed) or not "
            "(empty).",
            ("result",),
            buckets=CLAIM_BUCKETS_S,
            registry=registry,
        )
        self.heartbeat_failures = Counter(
            "cam_tasks_heartbeat_failures",
            "Lease renewals that failed: the task was taken away (lost), the store did not "
            "answer (database_unavailable), or anything else (error).",
            ("reason",),
            registry=registry,
        )
        self.tasks = Gauge(
            "cam_tasks_tasks",
            "Pending and running tasks in the store, all instances together (counted at "
            "scrape time).",
            ("status",),
            registry=registry,
        )
        self.database_up = Gauge(
            "cam_tasks_database_up",
            "1 when the store answered the last scrape's count, else 0.",
            registry=registry,
        )
        self.workers = Gauge(
            "cam_tasks_workers", "Worker coroutines of this process.", registry=registry
        )
        self.workers_busy = Gauge(
            "cam_tasks_workers_busy", "Workers running a task now.", registry=registry
        )
        self.buffered = Gauge(
            "cam_tasks_buffered_tasks",
            "Claimed tasks waiting in this process's buffer for a worker.",
            registry=registry,
        )
        self.buffer_capacity = Gauge(
            "cam_tasks_buffer_capacity",
            "Claimed tasks the buffer holds at most beyond the running ones.",
            registry=registry,
        )
        self.dispatcher_running = Gauge(
            "cam_tasks_dispatcher_running",
            "1 while this process claims and runs tasks.",
            registry=registry,
        )
        # The hot paths' children (see _Children): none of these is ever cleared.
        self._submitted = _Children(self.submitted)
        self._completed = _Children(self.completed)
        self._failed = _Children(self.failed)
        self._cancelled = _Children(self.cancelled)
        self._retried = _Children(self.retried)
        self._duration = _Children(self.duration)
        self._queue_wait = _Children(self.queue_wait)
        self._claim_latency = _Children(self.claim_latency)
        self._heartbeat_failures = _Children(self.heartbeat_failures)
        for task_type in types:
            for queue in sorted(self._queues):
                for counter in (self._submitted, self._completed, self._failed, self._cancelled):
                    counter(task_type, queue)
                for reason in RETRY_REASONS:
                    self._retried(task_type, queue, reason)
        for reason in ("lost", "database_unavailable", "error"):
            self._heartbeat_failures(reason)

    # -- sources -------------------------------------------------------------------------------

    def watch_dispatcher(self, stats: Callable[[], DispatcherStats]) -> None:
        """Read the workers and buffer gauges from ``stats`` at every scrape, and label
        ``cam_tasks_info`` with the dispatcher's owner id."""
        self.info.info({"version": __version__, "owner": stats().owner})
        self.workers.set_function(lambda: stats().worker_count)
        self.workers_busy.set_function(lambda: stats().busy_workers)
        self.buffered.set_function(lambda: stats().buffered)
        self.buffer_capacity.set_function(lambda: stats().buffer_size)
        self.dispatcher_running.set_function(lambda: 1 if stats().running else 0)

    def task_changed(self, change: TaskChange) -> None:
        """An :class:`ObservedTaskRepository` listener: count one write of this process."""
        task = change.task
        if task is None:  # heartbeat or delete: nothing to count
            return
        action, task_type = change.action, task.type
        queue = task.queue if task.queue in self._queues else OTHER_QUEUE
        if action is Action.SUBMIT:
            self._submitted(task_type, queue).inc()
        elif action is Action.CLAIM:
            if task.started_at is not None:
                wait_s = (task.started_at - task.run_at).total_seconds()
                self._queue_wait(task_type).observe(max(0.0, wait_s))
        elif action is Action.COMPLETE:
            self._completed(task_type, queue).inc()
        elif action in (Action.FAIL, Action.RESCUE_EXHAUSTED):
            self._failed(task_type, queue).inc()
        elif action in (Action.ACKNOWLEDGE_CANCEL, Action.CANCEL):
            self._cancelled(task_type, queue).inc()
        elif action is Action.RETRY_LATER:
            self._retried(task_type, queue, "error").inc()
        elif action is Action.RETRY:
            self._retried(task_type, queue, "operator").inc()
        elif action is Action.RESCUE:
            self._retried(task_type, queue, "lease_expired").inc()
        outcome = _OUTCOMES.get(action)
        if outcome is not None and task.history:
            record = task.history[-1]
            run_s = (record.ended_at - record.started_at).total_seconds()
            self._duration(task_type, outcome).observe(max(0.0, run_s))

    # -- DispatcherObserver --------------------------------------------------------------------

    def claim_finished(self, duration_s: float, *, claimed: bool) -> None:
        self._claim_latency("claimed" if claimed else "empty").observe(duration_s)

    def heartbeat_failed(self, reason: str) -> None:
        self._heartbeat_failures(reason).inc()

    # -- exposition ----------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Count pending and running tasks in the store (bounded by ``store_timeout_s``).

        Never raises for an unreachable or slow store: the samples are dropped and
        ``cam_tasks_database_up`` says why.
        """
        try:
            async with asyncio.timeout(self._store_timeout_s):
                counts = await self._repository.count_by_status(TaskFilter(statuses=_ACTIVE))
        except (DatabaseUnavailableError, TimeoutError):
            logger.warning("metrics: the store did not answer the count of active tasks")
        except Exception:
            logger.exception("metrics: counting active tasks failed")
        else:
            for status in (TaskStatus.PENDING, TaskStatus.RUNNING):
                self.tasks.labels(status.value).set(counts.get(status, 0))
            self.database_up.set(1)
            return
        self.tasks.clear()
        self.database_up.set(0)

    async def render(self, accept: str = "") -> tuple[bytes, str]:
        """Refresh the store's gauges, then encode the registry in the format ``accept`` asks
        for (Prometheus text by default, OpenMetrics when asked). Returns (body, content type).
        """
        await self.refresh()
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type
