"""Named queues, paused queues, honest running status and concurrency keys in one process."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from pydantic import BaseModel, ConfigDict

from cam_tasks.domain import KeyLimits, Lease, RetryPolicy, SystemClock, TaskStatus, new_task
from cam_tasks.executor import ExecutorRegistry, TaskContext
from cam_tasks.queue import Dispatcher
from cam_tasks.repository import (
    MemoryKeySlotRepository,
    MemoryQueueRepository,
    MemoryTaskRepository,
)
from tests.support.waiting import eventually

CLOCK = SystemClock()


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    group: str = ""


class Gauge:
    """Records how many of its tasks run at once, per queue and per params group; each
    execution waits until ``release`` is set."""

    type = "gauge"
    params_model = Params

    def __init__(self) -> None:
        self.running: dict[str, int] = defaultdict(int)
        self.most: dict[str, int] = defaultdict(int)
        self.started: list[tuple[str, Any]] = []
        self.release = asyncio.Event()

    async def execute(self, params: Params, ctx: TaskContext) -> None:
        self.started.append((ctx.task_id, CLOCK.now()))
        self.running[params.group] += 1
        self.most[params.group] = max(self.most[params.group], self.running[params.group])
        try:
            await self.release.wait()
        finally:
            self.running[params.group] -= 1


def dispatcher(repo: MemoryTaskRepository, gauge: Gauge, **kw: Any) -> Dispatcher:
    options: dict[str, Any] = {
        "lease_s": 5.0,
        "heartbeat_interval_s": 0.1,
        "progress_interval_s": 0.05,
        "rescue_interval_s": 0.05,
        "poll_interval_s": 0.05,
        "shutdown_timeout_s": 5.0,
        "retry_policy": RetryPolicy(base_s=0.01, max_s=0.02),
    }
    options.update(kw)
    return Dispatcher(repo, ExecutorRegistry([gauge]), **options)


async def submit(repo: MemoryTaskRepository, group: str, **fields: Any) -> str:
    task = await repo.insert(
        new_task(task_type="gauge", params={"group": group}, now=CLOCK.now(), **fields)
    )
    return task.id


async def test_each_queue_runs_at_most_its_concurrency_and_a_flood_delays_no_other() -> None:
    repo, gauge = MemoryTaskRepository(), Gauge()
    flood = [await submit(repo, "a", queue="a") for _ in range(20)]
    other = [await submit(repo, "b", queue="b") for _ in range(4)]
    async with dispatcher(repo, gauge, queues={"a": 1, "b": 4}):
        # Every task of B starts while A's flood still waits, one at a time.
        await eventually(lambda: asyncio.sleep(0, gauge.running["b"]), lambda n: n == 4)
        assert gauge.running["a"] == 1
        assert [(await repo.get(i)).status for i in other] == [TaskStatus.RUNNING] * 4
        gauge.release.set()
        await eventually(
            lambda: repo.count_by_status(), lambda c: c[TaskStatus.COMPLETED] == 24, timeout_s=20
        )
    assert (gauge.most["a"], gauge.most["b"]) == (1, 4)
    assert len(flood) == 20


async def test_a_task_waiting_for_a_slot_is_pending_and_started_at_is_its_start() -> None:
    repo, gauge = MemoryTaskRepository(), Gauge()
    first = await submit(repo, "x")
    second = await submit(repo, "x")
    async with dispatcher(repo, gauge, queues={"default": 1}):
        await eventually(lambda: asyncio.sleep(0, len(gauge.started)), lambda n: n == 1)
        waiting = await repo.get(second)
        assert waiting.status is TaskStatus.PENDING  # not "running" while it waits
        assert waiting.started_at is None
        running = await repo.get(first)
        ((task_id, executor_started),) = gauge.started
        assert task_id == first
        # started_at is the claim, made for a free slot: the executor started right after.
        assert running.started_at is not None
        assert 0 <= (executor_started - running.started_at).total_seconds() < 1.0
        gauge.release.set()
        await eventually(lambda: repo.get(second), lambda t: t.status.is_terminal)


async def test_a_paused_queue_is_not_claimed_until_resumed() -> None:
    repo, gauge, flags = MemoryTaskRepository(), Gauge(), MemoryQueueRepository()
    gauge.release.set()
    await flags.set_paused("a", True, now=CLOCK.now())
    paused = await submit(repo, "a", queue="a")
    open_ = await submit(repo, "b", queue="b")
    reads = 0

    async def read_flags() -> frozenset[str]:
        nonlocal reads
        reads += 1
        return await flags.paused()

    async with dispatcher(repo, gauge, queues={"a": 2, "b": 2}, paused=read_flags):
        await eventually(lambda: repo.get(open_), lambda t: t.status is TaskStatus.COMPLETED)
        # Five more reads of the flags (five feeder passes) later, still untouched.
        seen = reads
        await eventually(lambda: asyncio.sleep(0, reads), lambda n: n >= seen + 5)
        assert (await repo.get(paused)).status is TaskStatus.PENDING
        await flags.set_paused("a", False, now=CLOCK.now())
        await eventually(lambda: repo.get(paused), lambda t: t.status is TaskStatus.COMPLETED)


async def test_a_key_limit_holds_and_other_tasks_pass_over_its_waiting_tasks() -> None:
    repo, gauge, slots = MemoryTaskRepository(), Gauge(), MemoryKeySlotRepository()
    keyed = [await submit(repo, "keyed", concurrency_key="acct:1") for _ in range(6)]
    free = [await submit(repo, "free") for _ in range(4)]
    limits = KeyLimits({"acct:*": 2})
    async with dispatcher(repo, gauge, queues={"default": 6}, key_slots=slots, key_limit=limits):
        await eventually(lambda: asyncio.sleep(0, gauge.running["free"]), lambda n: n == 4)
        assert gauge.running["keyed"] == 2  # the other four keyed tasks wait, passed over
        assert await slots.held() == {"acct:1": 2}
        gauge.release.set()
        await eventually(
            lambda: repo.count_by_status(), lambda c: c[TaskStatus.COMPLETED] == 10, timeout_s=20
        )
    assert gauge.most["keyed"] == 2
    assert await slots.held() == {}  # every slot freed (the dispatcher's close waited for it)
    assert len(keyed) + len(free) == 10


async def test_a_slot_whose_holder_no_longer_runs_is_taken_over() -> None:
    repo, gauge, slots = MemoryTaskRepository(), Gauge(), MemoryKeySlotRepository()
    gauge.release.set()
    # A holder left behind by an attempt that ended without freeing its slot.
    await slots.acquire("acct:1", limit=1, holder=Lease("gone", "dead-owner", 1))
    task_id = await submit(repo, "keyed", concurrency_key="acct:1")
    limits = KeyLimits({"acct:*": 1})
    async with dispatcher(repo, gauge, key_slots=slots, key_limit=limits):
        done = await eventually(lambda: repo.get(task_id), lambda t: t.status.is_terminal)
    assert done.status is TaskStatus.COMPLETED
    assert await slots.held() == {}


async def test_a_pause_made_in_this_process_holds_from_the_next_claim() -> None:
    repo, gauge, flags = MemoryTaskRepository(), Gauge(), MemoryQueueRepository()
    gauge.release.set()
    reads = 0

    async def read_flags() -> frozenset[str]:
        nonlocal reads
        reads += 1
        return await flags.paused()

    # A poll interval far longer than the test: only the notification makes it re-read.
    async with dispatcher(repo, gauge, poll_interval_s=60, paused=read_flags) as running:
        await eventually(lambda: asyncio.sleep(0, reads), lambda n: n >= 1)
        await flags.set_paused("default", True, now=CLOCK.now())
        running.queues_changed()
        await eventually(lambda: asyncio.sleep(0, reads), lambda n: n >= 2)
        task_id = await submit(repo, "x")
        running.task_submitted(await repo.get(task_id))
        for seen in (3, 4):  # two whole feeder passes after the submit (each re-reads once told)
            running.queues_changed()
            await eventually(lambda: asyncio.sleep(0, reads), lambda n, s=seen: n >= s)
        assert (await repo.get(task_id)).status is TaskStatus.PENDING
        await flags.set_paused("default", False, now=CLOCK.now())
        running.queues_changed()
        await eventually(lambda: repo.get(task_id), lambda t: t.status is TaskStatus.COMPLETED)


async def test_a_due_task_that_cannot_be_claimed_is_not_polled_in_a_spin() -> None:
    class Counting(MemoryTaskRepository):
        lookups = 0

        async def next_run_at(self, **kw: Any) -> Any:
            Counting.lookups += 1
            return await super().next_run_at(**kw)

    repo, gauge, slots = Counting(), Gauge(), MemoryKeySlotRepository()
    for _ in range(2):  # the first runs (until released) and holds the key: the second waits
        await submit(repo, "keyed", concurrency_key="acct:1")
    limits = KeyLimits({"acct:*": 1})
    reads = 0

    async def read_flags() -> frozenset[str]:
        nonlocal reads
        reads += 1
        return frozenset()

    async with dispatcher(
        repo, gauge, poll_interval_s=60, paused=read_flags, key_slots=slots, key_limit=limits
    ) as running:
        await eventually(lambda: asyncio.sleep(0, gauge.running["keyed"]), lambda n: n == 1)
        await eventually(lambda: asyncio.sleep(0, reads), lambda n: n >= 1)
        before = Counting.lookups
        for seen in (2, 3, 4):  # three more feeder passes, the second task due all along
            running.queues_changed()
            await eventually(lambda: asyncio.sleep(0, reads), lambda n, s=seen: n >= s)
        assert Counting.lookups - before <= 4  # about one per pass: it slept, it did not spin
        gauge.release.set()
