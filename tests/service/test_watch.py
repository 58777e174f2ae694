"""TaskWatcher: waiters wake on local news at once, see other instances' writes by polling, and
share one read per watched task however many they are."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from cam_tasks.domain import (
    Action,
    DatabaseUnavailableError,
    Task,
    TaskChange,
    TaskNotFoundError,
    new_task,
)
from cam_tasks.service import TaskWatcher
from tests.support.waiting import eventually

NOW = datetime(2026, 3, 1, tzinfo=UTC)
NEVER_S = 3600.0


class Store:
    """A reader over one mutable task that counts its reads and can be made to fail."""

    def __init__(self) -> None:
        self.task: Task | None = new_task(task_type="echo", params={}, now=NOW, task_id="t1")
        self.reads = 0
        self.failure: Exception | None = None

    async def get(self, task_id: str) -> Task:
        self.reads += 1
        if self.failure is not None:
            raise self.failure
        if self.task is None or task_id != self.task.id:
            raise TaskNotFoundError(task_id)
        return self.task

    def write(self, **changes: object) -> None:
        assert self.task is not None
        self.task = self.task.model_copy(update=changes)


@pytest.fixture
async def store() -> Store:
    return Store()


async def test_local_news_wakes_every_subscriber_with_a_single_read(store: Store) -> None:
    watcher = TaskWatcher(store, poll_interval_s=NEVER_S)
    first_seen = 0
    progress: list[float] = []

    async def follow() -> None:
        nonlocal first_seen
        async with watcher.subscribe("t1") as subscription:
            assert await subscription.next() is not None
            first_seen += 1
            task = await subscription.next()
            assert task is not None
            progress.append(task.progress)

    async with asyncio.TaskGroup() as group:
        for _ in range(10):
            group.create_task(follow())
        await eventually(lambda: _value(first_seen), lambda n: n == 10)
        reads = store.reads

        store.write(progress=42.0)
        watcher.on_change(TaskChange(Action.HEARTBEAT, "t1"))

    assert progress == [42.0] * 10
    assert store.reads == reads + 1
    assert watcher.watching("t1") == 0
    await watcher.close()


async def _value(value: int) -> int:
    return value


async def test_news_of_another_task_wakes_nobody(store: Store) -> None:
    watcher = TaskWatcher(store, poll_interval_s=NEVER_S)
    async with watcher.subscribe("t1") as subscription:
        assert await subscription.next() is not None
        watcher.on_change(TaskChange(Action.HEARTBEAT, "other"))
        assert await subscription.next(timeout_s=0.01) is None
    await watcher.close()


async def test_without_news_a_watched_task_is_read_again_every_interval(store: Store) -> None:
    watcher = TaskWatcher(store, poll_interval_s=0.01)
    async with watcher.subscribe("t1") as subscription:
        assert await subscription.next() is not None
        store.write(progress=5.0)  # written elsewhere: nobody announces it

        task = await eventually(subscription.next, lambda t: t is not None and t.progress == 5.0)

    assert task is not None
    await watcher.close()


async def test_wait_returns_the_latest_state_when_time_runs_out(store: Store) -> None:
    watcher = TaskWatcher(store, poll_interval_s=NEVER_S)
    task = await watcher.wait("t1", until=lambda _: False, timeout_s=0.01)
    assert task.id == "t1"
    await watcher.close()


async def test_a_failed_read_is_raised_and_the_next_one_recovers(store: Store) -> None:
    watcher = TaskWatcher(store, poll_interval_s=NEVER_S)
    store.failure = DatabaseUnavailableError("down")
    async with watcher.subscribe("t1") as subscription:
        with pytest.raises(DatabaseUnavailableError):
            await subscription.next()
        store.failure = None
        watcher.on_change(TaskChange(Action.HEARTBEAT, "t1"))
        assert await subscription.next() is not None
    await watcher.close()


async def test_a_missing_task_is_raised(store: Store) -> None:
    watcher = TaskWatcher(store, poll_interval_s=NEVER_S)
    with pytest.raises(TaskNotFoundError):
        await watcher.wait("nope", until=lambda _: True, timeout_s=1)
    await watcher.close()


async def test_close_releases_every_waiter_and_is_idempotent(store: Store) -> None:
    watcher = TaskWatcher(store, poll_interval_s=NEVER_S)
    async with watcher.subscribe("t1") as subscription:
        assert await subscription.next() is not None
        waiting = asyncio.create_task(watcher.wait("t1", until=lambda _: False, timeout_s=60))
        await eventually(lambda: _value(watcher.watching("t1")), lambda n: n == 2)

        await watcher.close()
        await watcher.close()

        assert (await waiting).id == "t1"  # the latest state it read, at once
        assert subscription.closed
        assert await subscription.next() is None


def test_the_poll_interval_must_be_positive_and_finite(store: Store) -> None:
    for bad in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="poll_interval_s"):
            TaskWatcher(store, poll_interval_s=bad)
