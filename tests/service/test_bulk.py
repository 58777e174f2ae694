"""Bulk retry, cancel and delete through TaskService: counts exact, another project's tasks
untouched, viewers refused, bad filters refused with details."""

from __future__ import annotations

import builtins
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from cam_tasks.domain import (
    AccessDeniedError,
    InvalidParamsError,
    Lease,
    ManualClock,
    Principal,
    Role,
    Task,
    TaskError,
    TaskFilter,
    TaskStatus,
    new_task,
)
from cam_tasks.executor import ExecutorRegistry, TaskContext
from cam_tasks.repository.memory import MemoryTaskRepository
from cam_tasks.service import TaskService

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALICE = Principal(name="alice", projects=("a",), role=Role.OPERATOR)
VERA = Principal(name="vera", projects=("a",), role=Role.VIEWER)
ROOT = Principal(name="root", role=Role.ADMIN)
FAILED = TaskFilter(statuses=frozenset({TaskStatus.FAILED}))


class NoParams(BaseModel):
    pass


class Noop:
    type = "noop"
    params_model: builtins.type[BaseModel] = NoParams

    async def execute(self, params: NoParams, ctx: TaskContext) -> Any:
        return None


@pytest.fixture
def repo() -> MemoryTaskRepository:
    return MemoryTaskRepository()


@pytest.fixture
def service(repo: MemoryTaskRepository) -> TaskService:
    registry = ExecutorRegistry()
    registry.register(Noop())
    return TaskService(repo, registry, clock=ManualClock(START))


async def _task(repo: MemoryTaskRepository, task_id: str, project: str, end: str | None) -> Task:
    """A task of ``project`` left pending (``end`` None), running, failed or completed."""
    task = await repo.insert(
        new_task(task_type=f"t{task_id}", params={}, now=START, task_id=task_id, project_id=project)
    )
    if end is None:
        return task
    claimed = await repo.claim(types=[task.type], owner="w", now=START, lease_s=60)
    assert claimed is not None
    lease = Lease(claimed.id, "w", claimed.attempts, claimed.started_at)
    if end == "failed":
        return await repo.fail(lease, now=START, error=TaskError(type="boom", message="x"))
    if end == "completed":
        return await repo.complete(lease, now=START, result=None)
    return claimed


async def _status(repo: MemoryTaskRepository, task_id: str) -> TaskStatus:
    return (await repo.get(task_id)).status


async def test_bulk_retry_counts_exactly_and_leaves_other_projects_alone(
    repo: MemoryTaskRepository, service: TaskService
) -> None:
    for task_id in ("a1", "a2"):
        await _task(repo, task_id, "a", "failed")
    await _task(repo, "b1", "b", "failed")
    await _task(repo, "a3", "a", "completed")

    assert await service.retry_many(FAILED, principal=ALICE) == 2
    assert [await _status(repo, i) for i in ("a1", "a2", "b1", "a3")] == [
        TaskStatus.PENDING,
        TaskStatus.PENDING,
        TaskStatus.FAILED,
        TaskStatus.COMPLETED,
    ]
    assert await service.retry_many(FAILED, principal=ROOT) == 1  # an admin reaches b1


async def test_bulk_cancel_and_delete_are_scoped_to_the_callers_projects(
    repo: MemoryTaskRepository, service: TaskService
) -> None:
    await _task(repo, "a1", "a", None)
    await _task(repo, "a2", "a", "running")
    await _task(repo, "b1", "b", None)
    await _task(repo, "a3", "a", "completed")
    await _task(repo, "b2", "b", "completed")

    assert await service.cancel_many(TaskFilter(), principal=ALICE) == 2
    assert await _status(repo, "a1") is TaskStatus.CANCELLED
    assert (await repo.get("a2")).cancel_requested
    assert await _status(repo, "b1") is TaskStatus.PENDING

    done = TaskFilter(statuses=frozenset({TaskStatus.COMPLETED, TaskStatus.CANCELLED}))
    assert await service.delete_many(done, principal=ALICE) == 2  # a1 (cancelled), a3
    remaining = await repo.list(TaskFilter(), offset=0, limit=10)
    assert sorted(task.id for task in remaining.tasks) == ["a2", "b1", "b2"]


@pytest.mark.parametrize("action", ["retry_many", "cancel_many", "delete_many"])
async def test_a_viewer_may_not_act_in_bulk(
    repo: MemoryTaskRepository, service: TaskService, action: str
) -> None:
    await _task(repo, "a1", "a", "failed")
    with pytest.raises(AccessDeniedError):
        await getattr(service, action)(TaskFilter(types=frozenset({"ta1"})), principal=VERA)
    assert await _status(repo, "a1") is TaskStatus.FAILED


@pytest.mark.parametrize(
    ("action", "status"),
    [
        ("retry_many", TaskStatus.PENDING),
        ("cancel_many", TaskStatus.FAILED),
        ("delete_many", TaskStatus.RUNNING),
    ],
)
async def test_a_status_the_action_cannot_apply_to_is_refused(
    service: TaskService, action: str, status: TaskStatus
) -> None:
    with pytest.raises(InvalidParamsError) as caught:
        await getattr(service, action)(TaskFilter(statuses=frozenset({status})))
    assert caught.value.details[0]["loc"] == ["status"]


async def test_a_bulk_delete_needs_a_filter(
    repo: MemoryTaskRepository, service: TaskService
) -> None:
    await _task(repo, "a3", "a", "completed")
    with pytest.raises(InvalidParamsError) as caught:
        await service.delete_many(TaskFilter(), principal=ALICE)
    assert caught.value.details[0]["type"] == "filter_required"
    assert await _status(repo, "a3") is TaskStatus.COMPLETED
