"""The statistics use cases: windows are checked and defaulted; throughput is a sliding minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cam_tasks.domain import (
    Action,
    InvalidParamsError,
    ManualClock,
    TaskChange,
    TaskStatus,
    new_task,
)
from cam_tasks.repository import MemoryTaskRepository, ObservedTaskRepository
from cam_tasks.service.stats import StatsService, ThroughputMeter

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


async def test_the_window_defaults_to_the_day_before_now(clock: ManualClock) -> None:
    service = StatsService(MemoryTaskRepository(clock=clock), clock=clock)

    default = await service.task_stats()
    until_only = await service.task_stats(until=T0 - timedelta(hours=1))

    assert (default.since, default.until) == (T0 - timedelta(days=1), T0)
    assert until_only.since == T0 - timedelta(hours=25)


@pytest.mark.parametrize(
    ("since", "until", "loc"),
    [
        (datetime(2026, 3, 1), None, "since"),  # naive
        (None, datetime(2026, 3, 1), "until"),
    ],
)
async def test_bad_windows_are_invalid_params(
    clock: ManualClock, since: datetime | None, until: datetime | None, loc: str
) -> None:
    service = StatsService(MemoryTaskRepository(clock=clock), clock=clock)

    with pytest.raises(InvalidParamsError) as raised:
        await service.task_stats(since=since, until=until)

    assert raised.value.details[0]["loc"] == [loc]


async def test_active_counts_are_pending_and_running_only(clock: ManualClock) -> None:
    repo = MemoryTaskRepository(clock=clock)
    for _ in range(2):
        await repo.insert(new_task(task_type="t", params={}, now=clock.now()))
    claimed = await repo.claim(types={"t"}, owner="w", now=clock.now(), lease_s=30)
    assert claimed is not None
    await repo.insert(new_task(task_type="t", params={}, now=clock.now()))
    await repo.complete(claimed.lease, now=clock.now(), result=None)

    counts = await StatsService(repo, clock=clock).active_counts()

    assert counts == {TaskStatus.PENDING: 2, TaskStatus.RUNNING: 0}


async def test_throughput_counts_completions_of_the_last_window(clock: ManualClock) -> None:
    repo = ObservedTaskRepository(MemoryTaskRepository(clock=clock))
    meter = ThroughputMeter(clock=clock, window_s=60)
    repo.add_listener(meter)

    async def complete_one() -> None:
        await repo.insert(new_task(task_type="t", params={}, now=clock.now()))
        task = await repo.claim(types={"t"}, owner="w", now=clock.now(), lease_s=30)
        assert task is not None
        await repo.complete(task.lease, now=clock.now(), result=None)

    await complete_one()
    clock.advance(30)
    await complete_one()
    await complete_one()
    meter(TaskChange(Action.FAIL, "x"))  # other changes are not completions
    assert meter.completed() == 3

    clock.advance(30)  # the first completion is exactly 60 s old: out
    assert meter.completed() == 2
    clock.advance(30)
    assert meter.completed() == 0


def test_a_meter_needs_a_positive_window(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="window_s"):
        ThroughputMeter(clock=clock, window_s=0)


@pytest.mark.parametrize(
    ("since", "until"),
    [
        (T0, T0),  # empty
        (T0 + timedelta(seconds=1), None),  # after now, the default until: reversed
        (T0 + timedelta(days=1), T0 - timedelta(days=1)),
    ],
)
async def test_an_empty_or_reversed_window_counts_nothing(
    clock: ManualClock, since: datetime, until: datetime | None
) -> None:
    repo = MemoryTaskRepository(clock=clock)
    await repo.insert(new_task(task_type="t", params={}, now=clock.now()))
    stats = await StatsService(repo, clock=clock).task_stats(since=since, until=until)
    assert stats.total == 0
