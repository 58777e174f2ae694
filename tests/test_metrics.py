"""Metrics count what this process writes, read the store and the dispatcher at scrape time,
and live in a registry per runtime.

Task changes are driven through a real ObservedTaskRepository over the memory store at
ManualClock times, so every duration observed is exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict

from cam_tasks import __version__
from cam_tasks.domain import (
    DatabaseUnavailableError,
    ManualClock,
    Task,
    TaskError,
    TaskFilter,
    TaskStatus,
    new_task,
)
from cam_tasks.executor import ExecutorRegistry, TaskContext
from cam_tasks.metrics import OTHER_QUEUE, TaskMetrics
from cam_tasks.queue import Dispatcher
from cam_tasks.repository import MemoryTaskRepository, ObservedTaskRepository
from tests.support.waiting import eventually

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BOOM = TaskError(type="RuntimeError", message="boom")


class Store:
    """An observed memory store wired to a TaskMetrics, with helpers that move tasks."""

    def __init__(self, types: tuple[str, ...] = ("sync", "export")) -> None:
        self.clock = ManualClock(T0)
        self.repo = ObservedTaskRepository(MemoryTaskRepository(clock=self.clock))
        self.metrics = TaskMetrics(self.repo, types=types)
        self.repo.add_listener(self.metrics.task_changed)

    def value(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)

    async def submit(self, task_type: str = "sync", *, delay_s: float = 0) -> Task:
        run_at = self.clock.now() + timedelta(seconds=delay_s)
        return await self.repo.insert(
            new_task(task_type=task_type, params={}, now=self.clock.now(), run_at=run_at)
        )

    async def claim(self, task_type: str = "sync") -> Task:
        task = await self.repo.claim(
            types={task_type}, owner="w1", now=self.clock.now(), lease_s=60
        )
        assert task is not None
        return task


@pytest.fixture
def store() -> Store:
    return Store()


# -- counters and histograms from task changes --------------------------------------------------


async def test_registered_types_start_at_zero_so_rates_work_from_the_first_scrape(
    store: Store,
) -> None:
    for name in ("submitted", "completed", "failed", "cancelled"):
        assert store.value(f"cam_tasks_tasks_{name}_total", type="sync", queue="default") == 0
    for reason in ("error", "lease_expired", "operator"):
        assert (
            store.value(
                "cam_tasks_tasks_retried_total", type="export", queue="default", reason=reason
            )
            == 0
        )
    assert store.value("cam_tasks_heartbeat_failures_total", reason="lost") == 0


async def test_a_completed_task_counts_its_submit_its_wait_and_its_run_time(store: Store) -> None:
    await store.submit(delay_s=5)
    store.clock.advance(7)  # due at +5, claimed at +7: waited 2 s
    claimed = await store.claim()
    store.clock.advance(12.5)
    await store.repo.complete(claimed.lease, now=store.clock.now(), result=None)

    assert store.value("cam_tasks_tasks_submitted_total", type="sync", queue="default") == 1
    assert store.value("cam_tasks_tasks_completed_total", type="sync", queue="default") == 1
    assert store.value("cam_tasks_queue_wait_seconds_sum", type="sync") == 2
    assert store.value("cam_tasks_queue_wait_seconds_count", type="sync") == 1
    duration = {"type": "sync", "outcome": "completed"}
    assert store.value("cam_tasks_task_duration_seconds_sum", **duration) == 12.5
    assert store.value("cam_tasks_task_duration_seconds_bucket", **duration, le="10.0") == 0
    assert store.value("cam_tasks_task_duration_seconds_bucket", **duration, le="30.0") == 1


async def test_failures_retries_and_cancellations_are_counted_once_each(store: Store) -> None:
    # An error with attempts left: retried (error), then it fails for good.
    await store.submit()
    first = await store.claim()
    store.clock.advance(3)
    await store.repo.retry_later(
        first.lease, now=store.clock.now(), run_at=store.clock.now(), error=BOOM
    )
    second = await store.claim()
    store.clock.advance(4)
    failed = await store.repo.fail(second.lease, now=store.clock.now(), error=BOOM)
    # An operator retries it, then a pending one is cancelled at once and a running one on
    # request.
    await store.repo.retry(failed.id, now=store.clock.now())
    await store.repo.request_cancel(failed.id, now=store.clock.now())
    await store.submit("export")
    running = await store.claim("export")
    flagged = await store.repo.request_cancel(running.id, now=store.clock.now())
    assert flagged.status is TaskStatus.RUNNING  # only asked: not counted yet
    assert store.value("cam_tasks_tasks_cancelled_total", type="export", queue="default") == 0
    await store.repo.acknowledge_cancel(running.lease, now=store.clock.now())

    assert (
        store.value("cam_tasks_tasks_retried_total", type="sync", queue="default", reason="error")
        == 1
    )
    assert (
        store.value(
            "cam_tasks_tasks_retried_total", type="sync", queue="default", reason="operator"
        )
        == 1
    )
    assert store.value("cam_tasks_tasks_failed_total", type="sync", queue="default") == 1
    assert store.value("cam_tasks_tasks_cancelled_total", type="sync", queue="default") == 1
    assert store.value("cam_tasks_tasks_cancelled_total", type="export", queue="default") == 1
    assert store.value("cam_tasks_task_duration_seconds_sum", type="sync", outcome="retry") == 3
    assert store.value("cam_tasks_task_duration_seconds_sum", type="sync", outcome="failed") == 4
    assert (
        store.value("cam_tasks_task_duration_seconds_count", type="export", outcome="cancelled")
        == 1
    )


async def test_expired_leases_count_as_retries_or_failures(store: Store) -> None:
    retried = await store.submit()
    await store.claim()
    last_attempt = new_task(task_type="export", params={}, now=store.clock.now(), max_retries=0)
    await store.repo.insert(last_attempt)
    await store.claim("export")
    store.clock.advance(120)  # both leases (60 s) expired

    rescued = await store.repo.rescue_expired(now=store.clock.now())

    assert {task.id: task.status for task in rescued} == {
        retried.id: TaskStatus.PENDING,
        last_attempt.id: TaskStatus.FAILED,
    }
    assert (
        store.value(
            "cam_tasks_tasks_retried_total", type="sync", queue="default", reason="lease_expired"
        )
        == 1
    )
    assert store.value("cam_tasks_tasks_failed_total", type="export", queue="default") == 1
    # A rescued attempt's "run time" is how long nobody renewed it: not a duration.
    assert (
        store.value("cam_tasks_task_duration_seconds_count", type="sync", outcome="retry") is None
    )


# -- scrape-time gauges ---------------------------------------------------------------------------


async def test_pending_and_running_are_counted_in_the_store_at_scrape_time(store: Store) -> None:
    await store.submit()
    await store.submit()
    await store.submit("export")
    await store.claim("export")
    # Written behind this runtime's back (another instance): the store still counts it.
    await store.repo.inner.insert(new_task(task_type="other", params={}, now=store.clock.now()))

    await store.metrics.refresh()

    assert store.value("cam_tasks_tasks", status="pending") == 3
    assert store.value("cam_tasks_tasks", status="running") == 1
    assert store.value("cam_tasks_database_up") == 1


class UnreachableStore(MemoryTaskRepository):
    """A store whose counts fail the way an unreachable database does (the driver's errors are
    translated to DatabaseUnavailableError at the repository boundary, tested there)."""

    async def count_by_status(self, query: TaskFilter | None = None) -> Mapping[TaskStatus, int]:
        raise DatabaseUnavailableError("database unavailable: ServerSelectionTimeoutError")


class SilentStore(MemoryTaskRepository):
    """A store that never answers a count."""

    async def count_by_status(self, query: TaskFilter | None = None) -> Mapping[TaskStatus, int]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@pytest.mark.parametrize("down", [UnreachableStore, SilentStore])
async def test_a_store_that_does_not_answer_drops_the_counts_and_says_so(
    down: type[MemoryTaskRepository],
) -> None:
    metrics = TaskMetrics(down(), store_timeout_s=0.05)
    metrics.tasks.labels("pending").set(4)  # left over from an earlier scrape

    body, _ = await metrics.render()

    assert metrics.registry.get_sample_value("cam_tasks_database_up") == 0
    assert metrics.registry.get_sample_value("cam_tasks_tasks", {"status": "pending"}) is None
    assert b"cam_tasks_database_up 0.0" in body
    assert b'cam_tasks_tasks{status="pending"}' not in body


async def test_workers_and_buffer_are_read_from_the_dispatcher(store: Store) -> None:
    dispatcher = Dispatcher(store.repo, ExecutorRegistry(), worker_count=3, buffer_size=7)
    store.metrics.watch_dispatcher(dispatcher.stats)

    assert store.value("cam_tasks_workers") == 3
    assert store.value("cam_tasks_workers_busy") == 0
    assert store.value("cam_tasks_buffer_capacity") == 0  # no buffer: claims only for a free slot
    assert store.value("cam_tasks_buffered_tasks") == 0
    assert store.value("cam_tasks_dispatcher_running") == 0
    assert store.value("cam_tasks_info", version=__version__, owner=dispatcher.owner) == 1


# -- the dispatcher's observer ------------------------------------------------------------------


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Blocking:
    type = "sync"
    params_model = Params

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def execute(self, params: Params, ctx: TaskContext) -> Any:
        self.started.set()
        await self.release.wait()
        return None


async def test_claims_are_timed_and_a_lost_lease_is_a_heartbeat_failure(store: Store) -> None:
    executor = Blocking()
    dispatcher = Dispatcher(
        store.repo,
        ExecutorRegistry([executor]),
        clock=store.clock,
        lease_s=10,
        heartbeat_interval_s=1,
        progress_interval_s=0.01,
        poll_interval_s=0.05,
        shutdown_timeout_s=0,
        observer=store.metrics,
    )
    store.metrics.watch_dispatcher(dispatcher.stats)
    async with dispatcher:
        task = await store.submit()
        await asyncio.wait_for(executor.started.wait(), 10)
        assert store.value("cam_tasks_claim_latency_seconds_count", result="claimed") == 1
        assert store.value("cam_tasks_workers_busy") == 1
        assert store.value("cam_tasks_dispatcher_running") == 1
        # Another instance finds the lease expired and takes the task back.
        store.clock.advance(30)
        await store.repo.inner.rescue_expired(now=store.clock.now())

        async def lost() -> float | None:
            return store.value("cam_tasks_heartbeat_failures_total", reason="lost")

        await eventually(lost, lambda value: value == 1)
        await store.repo.inner.request_cancel(task.id, now=store.clock.now())
        executor.release.set()
    assert (store.value("cam_tasks_claim_latency_seconds_count", result="empty") or 0) >= 1


def test_observer_calls_count_by_result_and_reason(store: Store) -> None:
    store.metrics.claim_finished(0.004, claimed=False)
    store.metrics.claim_finished(0.2, claimed=True)
    store.metrics.heartbeat_failed("database_unavailable")

    assert store.value("cam_tasks_claim_latency_seconds_bucket", result="empty", le="0.005") == 1
    assert store.value("cam_tasks_claim_latency_seconds_bucket", result="claimed", le="0.1") == 0
    assert store.value("cam_tasks_heartbeat_failures_total", reason="database_unavailable") == 1


# -- exposition ---------------------------------------------------------------------------------


async def test_render_speaks_prometheus_text_or_openmetrics_as_asked(store: Store) -> None:
    await store.submit()

    text, text_type = await store.metrics.render("")
    open_body, open_type = await store.metrics.render("application/openmetrics-text")

    assert text_type.startswith("text/plain")
    assert open_type.startswith("application/openmetrics-text")
    assert open_body.rstrip().endswith(b"# EOF")
    families = {family.name: family for family in text_string_to_metric_families(text.decode())}
    assert families["cam_tasks_tasks_submitted"].type == "counter"
    assert families["cam_tasks_task_duration_seconds"].type == "histogram"
    assert families["cam_tasks_tasks"].type == "gauge"
    (pending,) = (s for s in families["cam_tasks_tasks"].samples if s.labels["status"] == "pending")
    assert pending.value == 1


async def test_two_runtimes_in_one_process_keep_separate_registries() -> None:
    first, second = Store(), Store()

    await first.submit()

    assert first.value("cam_tasks_tasks_submitted_total", type="sync", queue="default") == 1
    assert second.value("cam_tasks_tasks_submitted_total", type="sync", queue="default") == 0
    assert first.metrics.registry is not second.metrics.registry


async def test_counters_and_histograms_expose_no_created_series(store: Store) -> None:
    await store.submit()
    await store.claim()

    for accept in ("", "application/openmetrics-text"):
        body, _ = await store.metrics.render(accept)
        names = {line.split("{")[0].split(" ")[0] for line in body.decode().splitlines()}
        assert not {name for name in names if name.endswith("_created")}, accept
        assert "cam_tasks_tasks_submitted_total" in names
        assert "cam_tasks_queue_wait_seconds_count" in names


def test_leaving_out_created_series_leaves_the_hosts_own_metrics_alone() -> None:
    host = CollectorRegistry()
    Counter("host_requests", "A host's own counter.", registry=host).inc()
    TaskMetrics(MemoryTaskRepository())

    assert b"host_requests_created" in generate_latest(host)


async def test_task_counters_carry_the_declared_queue_and_bound_the_others() -> None:
    clock = ManualClock(T0)
    repo = ObservedTaskRepository(MemoryTaskRepository(clock=clock))
    metrics = TaskMetrics(repo, types=("sync",), queues=("default", "bulk"))
    repo.add_listener(metrics.task_changed)
    for queue in ("bulk", "bulk", "default", "made-up-1", "made-up-2"):
        await repo.insert(new_task(task_type="sync", params={}, now=T0, queue=queue))

    def submitted(queue: str) -> float | None:
        return metrics.registry.get_sample_value(
            "cam_tasks_tasks_submitted_total", {"type": "sync", "queue": queue}
        )

    assert (submitted("bulk"), submitted("default"), submitted(OTHER_QUEUE)) == (2, 1, 2)
    assert submitted("made-up-1") is None
