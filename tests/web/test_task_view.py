"""TaskView.dump, the fast path every task answer takes, says exactly what the model says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from cam_tasks.domain import Progress, Task, TaskError, new_task
from cam_tasks.repository import MemoryTaskRepository
from cam_tasks.web.schemas import TaskView

T0 = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def tasks_in_every_state() -> list[Task]:
    repository = MemoryTaskRepository()
    seen: list[Task] = []

    async def fresh(**fields: object) -> Task:
        task = new_task(task_type="sync", params={"region": "cn", "ids": [1, 2]}, now=T0, **fields)
        return await repository.insert(task)

    seen.append(await fresh(priority=7, timeout_s=30.0, project_id="p1"))  # an unnamed priority
    running = await repository.claim(types=["sync"], owner="w", now=at(1), lease_s=60)
    assert running is not None
    seen.append(running)
    await repository.heartbeat(
        running.lease, now=at(5), lease_s=60, progress=Progress(percent=40, message="m", step=2)
    )
    seen.append(await repository.get(running.id))
    boom = TaskError(type="RuntimeError", message="boom")
    seen.append(await repository.retry_later(running.lease, now=at(6), run_at=at(7), error=boom))
    again = await repository.claim(types=["sync"], owner="w", now=at(8), lease_s=60)
    assert again is not None
    seen.append(await repository.complete(again.lease, now=at(9.5), result={"n": 1, "x": [None]}))
    await fresh()
    failing = await repository.claim(types=["sync"], owner="w", now=at(10), lease_s=60)
    assert failing is not None
    seen.append(await repository.fail(failing.lease, now=at(11), error=boom))
    seen.append(await repository.request_cancel((await fresh()).id, now=at(12)))
    return seen


async def test_dump_is_the_models_json_for_a_task_in_every_state() -> None:
    for task in await tasks_in_every_state():
        for now in (at(0), at(20)):
            expected = TaskView.of(task, now=now).model_dump(mode="json")
            dumped = TaskView.dump(task, now=now)
            assert dumped == expected, task.status
            assert orjson.dumps(dumped) == orjson.dumps(expected)  # same types, same key order
