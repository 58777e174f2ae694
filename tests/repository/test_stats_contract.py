"""The stats contract, on every backend: memory, Mongo on mongomock-motor (no ``$percentile``:
the sorted fallback), Mongo over the wire with the server's ``$percentile`` when it has one, and
over the wire with the sorted fallback forced (skipped without MONGODB_URI).

Tasks reach their states through the repository's own transitions at ManualClock times, so
every duration is exact and nothing depends on the wall clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cam_tasks.domain import TaskError, TaskStatus, new_task
from cam_tasks.domain.stats import DurationStats, TaskStats, nearest_rank, rank_of
from cam_tasks.repository import TaskRepository
from tests.conftest import Backend

Repo = TaskRepository

# Far in the future: retention TTLs are judged by the wall clock (see the task contract).
T0 = datetime(2100, 1, 1, 12, 0, tzinfo=UTC)
SINCE, UNTIL = T0, T0 + timedelta(hours=1)
BOOM = TaskError(type="RuntimeError", message="boom")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture(params=["server", "sorted"])
def percentiles(request: pytest.FixtureRequest, backend: Backend) -> str:
    """How a Mongo store computes percentiles: ``$percentile`` where the server has it, or one
    sort per type (forced; on the wire only, the others already sort)."""
    if request.param == "sorted" and backend.name != "wire":
        pytest.skip("only the wire server has $percentile to turn off")
    return str(request.param)


@pytest.fixture
async def repo(backend: Backend, percentiles: str) -> Repo:
    mongo = {} if backend.database is None else {"server_percentile": None}
    if percentiles == "sorted":
        mongo["server_percentile"] = False
    store = backend.tasks(**mongo)
    await store.initialize()
    return store


@pytest.fixture
def exact(backend: Backend, percentiles: str) -> Callable[[float], Any]:
    """How a percentile is compared: exactly where the nearest rank is computed by us; within
    one rank where a real server's approximate ``$percentile`` (t-digest) may answer."""
    if backend.name == "wire" and percentiles == "server":
        return lambda value: pytest.approx(value, abs=1.0)
    return lambda value: value


async def finished(
    repo: Repo,
    task_type: str,
    *,
    created: float,
    duration_s: float,
    outcome: TaskStatus = TaskStatus.COMPLETED,
) -> None:
    """A task created at ``created`` that ran once for ``duration_s`` and ended in ``outcome``
    (no other pending task of its type may be due)."""
    task = await repo.insert(new_task(task_type=task_type, params={}, now=at(created)))
    claimed = await repo.claim(types=[task_type], owner="w1", now=at(created), lease_s=3600)
    assert claimed is not None
    assert claimed.id == task.id
    end = at(created + duration_s)
    if outcome is TaskStatus.COMPLETED:
        await repo.complete(claimed.lease, now=end, result=None)
    else:
        await repo.fail(claimed.lease, now=end, error=BOOM)


async def pending(repo: Repo, task_type: str, *, created: float) -> str:
    task = await repo.insert(new_task(task_type=task_type, params={}, now=at(created)))
    return task.id


Build = Callable[[Repo], Awaitable[None]]


async def a_busy_hour(repo: Repo) -> None:
    """sync: 20 completed taking 1..20 s (submitted out of order), 3 failed, 1 cancelled,
    1 running, 3 pending (one created exactly at ``since``); discover: 1 completed (7 s),
    1 failed. Outside the window: a slow sync created before it, one created exactly at
    ``until``, one long after."""
    await finished(repo, "sync", created=-60, duration_s=1000)
    for n, seconds in enumerate([7, 3, 20, 1, 12, 15, 9, 2, 18, 11, 4, 5, 6, 8, 10, 13, 14, 16]):
        await finished(repo, "sync", created=10 + n, duration_s=seconds)
    await finished(repo, "sync", created=100, duration_s=17)
    await finished(repo, "sync", created=101, duration_s=19)
    for n in range(3):
        await finished(repo, "sync", created=200 + n, duration_s=1, outcome=TaskStatus.FAILED)
    await finished(repo, "discover", created=300, duration_s=7)
    await finished(repo, "discover", created=301, duration_s=2, outcome=TaskStatus.FAILED)
    await repo.request_cancel(await pending(repo, "sync", created=400), now=at(401))
    await pending(repo, "sync", created=500)
    running = await repo.claim(types=["sync"], owner="w1", now=at(500), lease_s=3600)
    assert running is not None
    await pending(repo, "sync", created=0)  # exactly at since: in
    await pending(repo, "sync", created=600)
    await pending(repo, "sync", created=3600)  # exactly at until: out
    await pending(repo, "sync", created=7200)


def counts(**by_status: int) -> dict[TaskStatus, int]:
    return {status: by_status.get(status.value, 0) for status in TaskStatus}


# -- the rules, without a store ------------------------------------------------------------------


def test_nearest_rank_is_always_one_of_the_values() -> None:
    values = [float(v) for v in range(1, 21)]
    assert (rank_of(20, 0.5), rank_of(20, 0.95)) == (10, 19)
    assert (nearest_rank(values, 0.5), nearest_rank(values, 0.95)) == (10.0, 19.0)
    assert nearest_rank([4.0], 0.5) == nearest_rank([4.0], 0.95) == 4.0
    assert (rank_of(7, 0.5), rank_of(7, 0.95)) == (4, 7)
    assert rank_of(3, 1.0) == 3
    with pytest.raises(ValueError, match="no values"):
        rank_of(0, 0.5)


# -- the contract --------------------------------------------------------------------------------


async def test_counts_every_status_per_type_of_the_tasks_created_in_the_window(
    repo: Repo,
) -> None:
    await a_busy_hour(repo)

    stats = await repo.stats(since=SINCE, until=UNTIL)

    assert (stats.since, stats.until) == (SINCE, UNTIL)
    assert [entry.type for entry in stats.types] == ["discover", "sync"]
    discover, sync = stats.types
    assert sync.counts == counts(completed=20, failed=3, cancelled=1, running=1, pending=2)
    assert discover.counts == counts(completed=1, failed=1)
    assert stats.counts == counts(completed=21, failed=4, cancelled=1, running=1, pending=2)
    assert (sync.total, discover.total, stats.total) == (27, 2, 29)


async def test_success_rate_is_completed_over_completed_and_failed(repo: Repo) -> None:
    await a_busy_hour(repo)

    stats = await repo.stats(since=SINCE, until=UNTIL)

    discover, sync = stats.types
    assert sync.success_rate == pytest.approx(20 / 23)
    assert discover.success_rate == 0.5
    assert stats.success_rate == pytest.approx(21 / 25)


async def test_durations_of_completed_tasks_with_mean_and_nearest_rank_percentiles(
    repo: Repo, exact: Callable[[float], Any]
) -> None:
    await a_busy_hour(repo)

    stats = await repo.stats(since=SINCE, until=UNTIL)

    discover, sync = stats.types
    # The slow task created before the window and the failed ones are not counted.
    assert sync.durations is not None
    assert sync.durations.count == 20
    assert sync.durations.avg_s == pytest.approx(10.5)
    assert sync.durations.p50_s == exact(10.0)
    assert sync.durations.p95_s == exact(19.0)
    assert discover.durations == DurationStats(count=1, avg_s=7.0, p50_s=7.0, p95_s=7.0)


async def test_percentiles_of_an_odd_count_and_millisecond_durations(
    repo: Repo, exact: Callable[[float], Any]
) -> None:
    for n, seconds in enumerate([0.25, 0.001, 3.5, 0.0, 2.0, 1.5, 0.75]):
        await finished(repo, "export", created=n, duration_s=seconds)

    stats = await repo.stats(since=SINCE, until=UNTIL)

    (export,) = stats.types
    assert export.durations is not None
    assert export.durations.count == 7
    assert export.durations.avg_s == pytest.approx(8.001 / 7)
    assert export.durations.p50_s == exact(0.75)  # rank 4 of 7
    assert export.durations.p95_s == exact(3.5)  # rank 7 of 7


async def test_a_type_without_completed_tasks_has_no_durations(repo: Repo) -> None:
    await finished(repo, "sync", created=1, duration_s=5, outcome=TaskStatus.FAILED)
    await pending(repo, "sync", created=2)

    (sync,) = (await repo.stats(since=SINCE, until=UNTIL)).types

    assert sync.counts == counts(failed=1, pending=1)
    assert sync.durations is None
    assert sync.success_rate == 0.0


async def test_types_narrow_the_window(repo: Repo) -> None:
    await a_busy_hour(repo)

    only = await repo.stats(since=SINCE, until=UNTIL, types={"discover"})
    both = await repo.stats(since=SINCE, until=UNTIL, types={"discover", "sync", "unknown"})
    none = await repo.stats(since=SINCE, until=UNTIL, types=set())

    assert [entry.type for entry in only.types] == ["discover"]
    assert only.total == 2
    assert [entry.type for entry in both.types] == ["discover", "sync"]
    assert none == TaskStats(since=SINCE, until=UNTIL, types=())


async def test_an_empty_window_has_no_types_and_no_success_rate(repo: Repo) -> None:
    await a_busy_hour(repo)

    stats = await repo.stats(since=at(-3600), until=at(-3000))

    assert stats.types == ()
    assert stats.total == 0
    assert stats.counts == counts()
    assert stats.success_rate is None


async def test_a_window_must_end_after_it_starts(repo: Repo) -> None:
    with pytest.raises(ValueError, match="earlier"):
        await repo.stats(since=UNTIL, until=SINCE)
    with pytest.raises(ValueError, match="earlier"):
        await repo.stats(since=SINCE, until=SINCE)


async def test_project_ids_narrow_the_window_to_those_projects(repo: Repo) -> None:
    for n, project in enumerate(["a", "a", "b", None]):
        task = new_task(task_type="sync", params={}, now=at(n), project_id=project)
        await repo.insert(task)

    only_a = await repo.stats(since=SINCE, until=UNTIL, project_ids={"a"})
    a_and_b = await repo.stats(since=SINCE, until=UNTIL, project_ids={"a", "b"})
    none = await repo.stats(since=SINCE, until=UNTIL, project_ids=set())
    every = await repo.stats(since=SINCE, until=UNTIL)

    assert (only_a.total, a_and_b.total, none.total, every.total) == (2, 3, 0, 4)
