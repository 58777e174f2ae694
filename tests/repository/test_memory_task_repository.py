"""What only the memory task repository promises: retention by its clock, and its warning."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from cam_tasks.domain import ManualClock, TaskFilter, TaskNotFoundError, TaskStatus, new_task
from cam_tasks.repository import MemoryTaskRepository

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def test_finished_tasks_are_pruned_once_retention_passes_by_the_clock() -> None:
    clock = ManualClock(T0)
    repo = MemoryTaskRepository(retention_s=60, clock=clock)
    await repo.initialize()
    ancient = await repo.insert(new_task(task_type="old", params={}, now=at(-10_000)))
    done = await repo.insert(new_task(task_type="sync", params={}, now=T0, idempotency_key="k"))
    claimed = await repo.claim(types=["sync"], owner="w", now=T0, lease_s=30)
    assert claimed is not None
    await repo.complete(claimed.lease, now=at(10), result=None)

    clock.set(at(69.999))
    assert (await repo.get(done.id)).status is TaskStatus.COMPLETED
    clock.set(at(70))
    with pytest.raises(TaskNotFoundError):
        await repo.get(done.id)
    page = await repo.list(TaskFilter(), offset=0, limit=10)
    assert [task.id for task in page.tasks] == [ancient.id]
    counts = await repo.count_by_status()
    assert (counts[TaskStatus.COMPLETED], counts[TaskStatus.PENDING]) == (0, 1)
    # The key of a pruned task is free again.
    again = await repo.insert(
        new_task(task_type="sync", params={}, now=at(70), idempotency_key="k")
    )
    assert again.id != done.id


async def test_active_tasks_never_expire() -> None:
    clock = ManualClock(T0)
    repo = MemoryTaskRepository(retention_s=1, clock=clock)
    pending = await repo.insert(new_task(task_type="a", params={}, now=T0))
    await repo.insert(new_task(task_type="b", params={}, now=T0))
    running = await repo.claim(types=["b"], owner="w", now=T0, lease_s=10)
    assert running is not None
    clock.advance(10**6)
    assert (await repo.get(pending.id)).status is TaskStatus.PENDING
    assert (await repo.get(running.id)).status is TaskStatus.RUNNING
    assert [t.id for t in await repo.rescue_expired(now=clock.now())] == [running.id]


async def test_a_retried_task_is_no_longer_pruned() -> None:
    clock = ManualClock(T0)
    repo = MemoryTaskRepository(retention_s=60, clock=clock)
    task = await repo.insert(new_task(task_type="a", params={}, now=T0))
    await repo.request_cancel(task.id, now=T0)
    await repo.retry(task.id, now=at(1))
    clock.advance(3600)
    assert (await repo.get(task.id)).status is TaskStatus.PENDING


async def test_initialize_warns_once_that_nothing_survives_a_restart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    repo = MemoryTaskRepository()
    with caplog.at_level(logging.WARNING, logger="cam_tasks.repository.memory"):
        await repo.initialize()
        await repo.initialize()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "memory" in warnings[0].getMessage()


async def test_stored_tasks_do_not_share_containers_with_the_caller() -> None:
    repo = MemoryTaskRepository()
    params = {"ids": [1, 2]}
    task = await repo.insert(new_task(task_type="a", params=params, now=T0))
    params["ids"].append(3)
    assert (await repo.get(task.id)).params == {"ids": [1, 2]}
