"""Every write through the observed repository is announced once, after it succeeded."""

from __future__ import annotations

import pytest

from cam_tasks.domain import ManualClock, TaskChange, TaskLostError, TaskStatus, new_task
from cam_tasks.repository import MemoryTaskRepository, ObservedTaskRepository


async def test_listeners_hear_each_successful_write_in_order() -> None:
    clock = ManualClock()
    repo = ObservedTaskRepository(MemoryTaskRepository(clock=clock))
    await repo.initialize()
    heard: list[TaskChange] = []
    repo.add_listener(heard.append)

    def broken(change: TaskChange) -> None:
        raise RuntimeError("a listener bug must not break writes")

    repo.add_listener(broken)
    task = await repo.insert(new_task(task_type="t", params={}, now=clock.now()))
    claimed = await repo.claim(types={"t"}, owner="me", now=clock.now(), lease_s=30)
    assert claimed is not None
    await repo.heartbeat(claimed.lease, now=clock.now(), lease_s=30, progress=None)
    done = await repo.complete(claimed.lease, now=clock.now(), result={"ok": True})
    with pytest.raises(TaskLostError):  # a failed write is not announced
        await repo.complete(claimed.lease, now=clock.now(), result=None)
    await repo.delete(task.id)

    assert [c.action for c in heard] == ["submit", "claim", "heartbeat", "complete", "delete"]
    assert {c.task_id for c in heard} == {task.id}
    assert heard[3].task == done
    assert done.status is TaskStatus.COMPLETED


async def test_an_attempt_that_ends_cancelled_is_announced_as_a_cancel() -> None:
    clock = ManualClock()
    repo = ObservedTaskRepository(MemoryTaskRepository(clock=clock))
    await repo.initialize()
    heard: list[TaskChange] = []
    repo.add_listener(heard.append)
    task = await repo.insert(new_task(task_type="t", params={}, now=clock.now()))
    claimed = await repo.claim(types={"t"}, owner="me", now=clock.now(), lease_s=30)
    assert claimed is not None
    await repo.request_cancel(task.id, now=clock.now())
    released = await repo.release(claimed.lease, now=clock.now())
    assert released.status is TaskStatus.CANCELLED
    assert heard[-1].action == "acknowledge_cancel"
