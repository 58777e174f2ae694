"""Group commit of completions (cam_tasks.queue.outcomes): attempts that finish together are
written by one ``complete_many``, each worker answered with its own task as written, a lost
lease answered as lost, and a worker cancelled while it waits does not cancel the write."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from pydantic import BaseModel

from cam_tasks.domain import Task, TaskLostError, TaskStatus, new_task
from cam_tasks.domain.clock import SystemClock
from cam_tasks.executor import ExecutorRegistry, TaskContext
from cam_tasks.queue import Dispatcher
from cam_tasks.queue.outcomes import CompletionWriter
from cam_tasks.repository import Completion
from cam_tasks.repository.memory import MemoryTaskRepository
from tests.support.waiting import eventually

CLOCK = SystemClock()


class Recording(MemoryTaskRepository):
    """The memory store, recording the size of every batch of completions and able to hold
    one batch until told to go on."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []
        self.hold = asyncio.Event()
        self.hold.set()

    async def complete_many(self, completions: Sequence[Completion]) -> list[Task | TaskLostError]:
        self.batches.append(len(completions))
        await self.hold.wait()
        return await super().complete_many(completions)


class NoParams(BaseModel):
    pass


class Gate:
    """Every execution waits for one shared gate, so they all finish in the same turn."""

    type = "gate"
    params_model = NoParams

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.started = 0

    async def execute(self, params: NoParams, ctx: TaskContext) -> dict[str, int]:
        self.started += 1
        await self.open.wait()
        return {"n": 1}


async def test_attempts_that_finish_together_are_written_by_one_batch() -> None:
    repo, gate = Recording(), Gate()
    await repo.initialize()
    ids = [
        (await repo.insert(new_task(task_type="gate", params={}, now=CLOCK.now()))).id
        for _ in range(6)
    ]
    dispatcher = Dispatcher(repo, ExecutorRegistry([gate]), worker_count=6, poll_interval_s=0.05)
    await dispatcher.start()
    try:
        await eventually(lambda: asyncio.sleep(0, gate.started), lambda n: n == 6)
        gate.open.set()
        for task_id in ids:
            done = await eventually(lambda t=task_id: repo.get(t), lambda t: t.status.is_terminal)
            assert (done.status, done.result) == (TaskStatus.COMPLETED, {"n": 1})
    finally:
        await dispatcher.close()
    assert sum(repo.batches) == 6
    assert max(repo.batches) > 1  # not one write per task


async def test_each_caller_gets_its_own_answer_and_a_cancelled_caller_keeps_its_write() -> None:
    repo = Recording()
    await repo.initialize()
    for _ in range(3):
        await repo.insert(new_task(task_type="t", params={}, now=CLOCK.now()))
    claimed = await repo.claim_many(types=["t"], owner="w", now=CLOCK.now(), lease_s=60, limit=3)
    first, second, third = claimed
    await repo.release(third.lease, now=CLOCK.now())  # its lease is lost
    writer = CompletionWriter(repo)
    repo.hold.clear()
    waiting = [
        asyncio.create_task(writer.complete(task, now=CLOCK.now(), result=i, progress=None))
        for i, task in enumerate(claimed)
    ]
    await eventually(lambda: asyncio.sleep(0, len(repo.batches)), lambda n: n == 1)
    waiting[1].cancel()  # the second caller gives up while its batch is on the wire
    repo.hold.set()
    done = await waiting[0]
    assert (done.id, done.status, done.result) == (first.id, TaskStatus.COMPLETED, 0)
    assert (await repo.get(second.id)).status is TaskStatus.COMPLETED  # written all the same
    with pytest.raises(TaskLostError) as lost:
        await waiting[2]
    assert lost.value.task_id == third.id
    assert repo.batches == [3]
    await writer.close()
