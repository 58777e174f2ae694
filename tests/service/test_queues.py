"""QueueService: declared queues listed with their flag and active counts, pause and resume
stored where every instance reads them, unknown queues and viewers refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cam_tasks.domain import AccessDeniedError, ManualClock, Principal, Role, new_task
from cam_tasks.repository import TaskRepository
from cam_tasks.service import QueueInfo, QueueNotFoundError, QueueService
from tests.conftest import Backend

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALICE = Principal(name="alice", projects=("a",), role=Role.OPERATOR)
VERA = Principal(name="vera", projects=("a",), role=Role.VIEWER)
DECLARED = {"default": 4, "bulk": 1}


async def _service(backend: Backend) -> tuple[QueueService, TaskRepository]:
    tasks, queues = backend.tasks(), backend.queues()
    await tasks.initialize()
    await queues.initialize()
    return QueueService(tasks, queues, declared=DECLARED, clock=ManualClock(START)), tasks


async def test_lists_every_declared_queue_with_its_flag_and_counts(backend: Backend) -> None:
    service, tasks = await _service(backend)
    for queue, project in [("bulk", "a"), ("bulk", "b"), ("default", "a")]:
        await tasks.insert(
            new_task(task_type="t", params={}, now=START, queue=queue, project_id=project)
        )
    await tasks.insert(new_task(task_type="old", params={}, now=START, queue="retired"))
    claimed = await tasks.claim(types=["old"], owner="w", now=START, lease_s=60, queue="retired")
    assert claimed is not None

    assert await service.list() == [
        QueueInfo("bulk", 1, paused=False, pending=2, running=0),
        QueueInfo("default", 4, paused=False, pending=1, running=0),
        QueueInfo("retired", 0, paused=False, pending=0, running=1),
    ]
    mine = await service.list(principal=ALICE)
    assert [(q.name, q.pending) for q in mine] == [("bulk", 1), ("default", 1)]


async def test_pause_on_one_instance_is_seen_by_another_and_resume_clears_it(
    mongo_backend: Backend,
) -> None:
    one, _ = await _service(mongo_backend)
    other, _ = await _service(mongo_backend)  # a second instance on the same database
    paused = await one.pause("bulk", principal=ALICE)
    assert paused.paused
    assert await other.paused() == {"bulk"}
    assert [q.paused for q in await other.list()] == [True, False]
    await other.resume("bulk")
    assert await one.paused() == frozenset()


async def test_an_unknown_queue_and_a_viewer_are_refused(backend: Backend) -> None:
    service, _ = await _service(backend)
    with pytest.raises(QueueNotFoundError):
        await service.pause("nope")
    with pytest.raises(AccessDeniedError):
        await service.pause("bulk", principal=VERA)
    assert await service.paused() == frozenset()
