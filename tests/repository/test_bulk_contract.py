"""The bulk operator actions and per-queue counts of every task repository (memory, mongomock,
wire): ``retry_many``, ``cancel_many``, ``delete_many``, ``count_by_queue`` and the filters they
take (queues, error types, finish window). Times come from fixed instants; nothing sleeps."""

from __future__ import annotations

from typing import Any

import pytest

from cam_tasks.domain import Lease, Task, TaskError, TaskFilter, TaskStatus
from cam_tasks.repository import TaskRepository
from tests.conftest import Backend
from tests.repository.test_task_repository_contract import at, make

Repo = TaskRepository
TIMEOUT = TaskError(type="timeout", message="too slow")
BOOM = TaskError(type="RuntimeError", message="boom")


@pytest.fixture
async def repo(backend: Backend) -> Repo:
    repository = backend.tasks()
    await repository.initialize()
    return repository


async def _run(repo: Repo, task: Task, *, now: float) -> Task:
    """Insert ``task`` and claim it (the only due task of its type)."""
    await repo.insert(task)
    claimed = await repo.claim(
        types=[task.type], owner="w", now=at(now), lease_s=30, queue=task.queue
    )
    assert claimed is not None
    assert claimed.id == task.id
    return claimed


async def _failed(
    repo: Repo, task_id: str, *, at_s: float, error: TaskError = BOOM, **f: Any
) -> Task:
    claimed = await _run(repo, make(task_id, task_type=f"t-{task_id}", **f), now=at_s - 1)
    lease = Lease(claimed.id, "w", claimed.attempts, claimed.started_at)
    return await repo.fail(lease, now=at(at_s), error=error)


async def _completed(repo: Repo, task_id: str, *, at_s: float, **fields: Any) -> Task:
    claimed = await _run(repo, make(task_id, task_type=f"t-{task_id}", **fields), now=at_s - 1)
    lease = Lease(claimed.id, "w", claimed.attempts, claimed.started_at)
    return await repo.complete(lease, now=at(at_s), result={"ok": True})


async def _statuses(repo: Repo, *ids: str) -> list[TaskStatus]:
    return [(await repo.get(task_id)).status for task_id in ids]


async def test_retry_many_requeues_exactly_the_failed_and_cancelled_matches(repo: Repo) -> None:
    await _failed(repo, "f1", at_s=10)
    await _failed(repo, "f2", at_s=20, error=TIMEOUT)
    await _failed(repo, "f3", at_s=30, project_id="other")
    cancelled = await repo.insert(make("c1"))
    await repo.request_cancel(cancelled.id, now=at(5))
    await _completed(repo, "done", at_s=10)
    await repo.insert(make("p1"))

    mine = TaskFilter(project_ids=frozenset({"p"}))
    assert await repo.retry_many(mine, now=at(50)) == 0  # no task of project "p"
    count = await repo.retry_many(TaskFilter(error_types=frozenset({"timeout"})), now=at(50))
    assert count == 1
    assert await _statuses(repo, "f1", "f2", "f3") == [
        TaskStatus.FAILED,
        TaskStatus.PENDING,
        TaskStatus.FAILED,
    ]
    retried = await repo.get("f2")
    assert (retried.attempts, retried.error, retried.run_at) == (0, None, at(50))

    # No status given: every retriable match, the rest untouched.
    assert await repo.retry_many(TaskFilter(), now=at(60)) == 3  # f1, f3, c1
    assert await _statuses(repo, "f1", "f3", "c1", "done", "p1") == [
        TaskStatus.PENDING,
        TaskStatus.PENDING,
        TaskStatus.PENDING,
        TaskStatus.COMPLETED,
        TaskStatus.PENDING,
    ]


async def test_retry_many_honours_status_project_and_finish_window(repo: Repo) -> None:
    await _failed(repo, "early", at_s=10, project_id="a")
    await _failed(repo, "late", at_s=100, project_id="a")
    await _failed(repo, "theirs", at_s=10, project_id="b")
    cancelled = await repo.insert(make("c1", project_id="a"))
    await repo.request_cancel(cancelled.id, now=at(10))

    query = TaskFilter(
        statuses=frozenset({TaskStatus.FAILED}),
        project_ids=frozenset({"a"}),
        finished_after=at(5),
        finished_before=at(50),
    )
    assert await repo.retry_many(query, now=at(200)) == 1
    assert await _statuses(repo, "early", "late", "theirs", "c1") == [
        TaskStatus.PENDING,
        TaskStatus.FAILED,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
    ]
    # A filter on statuses retry cannot leave touches nothing.
    only_pending = TaskFilter(statuses=frozenset({TaskStatus.PENDING}))
    assert await repo.retry_many(only_pending, now=at(300)) == 0


async def test_cancel_many_cancels_pending_and_flags_running_once(repo: Repo) -> None:
    await repo.insert(make("p1", task_type="sync"))
    await repo.insert(make("p2", task_type="sync", project_id="other"))
    await _run(repo, make("r1", task_type="run"), now=1)
    await _completed(repo, "done", at_s=10)

    assert await repo.cancel_many(TaskFilter(project_ids=frozenset({"other"})), now=at(20)) == 1
    assert await _statuses(repo, "p1", "p2") == [TaskStatus.PENDING, TaskStatus.CANCELLED]

    assert await repo.cancel_many(TaskFilter(), now=at(30)) == 2  # p1 cancelled, r1 flagged
    assert await _statuses(repo, "p1", "r1", "done") == [
        TaskStatus.CANCELLED,
        TaskStatus.RUNNING,
        TaskStatus.COMPLETED,
    ]
    assert (await repo.get("r1")).cancel_requested
    # Asking again changes nothing: the running task was already asked to stop.
    assert await repo.cancel_many(TaskFilter(), now=at(40)) == 0


async def test_delete_many_deletes_only_finished_matches(repo: Repo) -> None:
    await _completed(repo, "old", at_s=10)
    await _completed(repo, "new", at_s=100)
    await _completed(repo, "theirs", at_s=10, project_id="b")
    await _failed(repo, "failed", at_s=10)
    await repo.insert(make("pending"))
    await _run(repo, make("running", task_type="run"), now=1)

    query = TaskFilter(statuses=frozenset({TaskStatus.COMPLETED}), finished_before=at(50))
    scoped = query.model_copy(update={"project_ids": frozenset({"b"})})
    assert await repo.delete_many(scoped) == 1
    assert await repo.delete_many(query) == 1  # "old"; "theirs" is already gone
    remaining = await repo.list(TaskFilter(), offset=0, limit=50)
    assert sorted(task.id for task in remaining.tasks) == ["failed", "new", "pending", "running"]

    assert await repo.delete_many(TaskFilter()) == 2  # failed, new: never the active ones
    remaining = await repo.list(TaskFilter(), offset=0, limit=50)
    assert sorted(task.id for task in remaining.tasks) == ["pending", "running"]


async def test_queues_filter_lists_and_counts_by_queue(repo: Repo) -> None:
    await repo.insert(make("a1", queue="alpha"))
    await repo.insert(make("a2", queue="alpha", created=1))
    await repo.insert(make("d1", created=2))
    await _run(repo, make("b1", task_type="run", queue="beta", created=3), now=3)

    page = await repo.list(TaskFilter(queues=frozenset({"alpha"})), offset=0, limit=10)
    assert ([t.id for t in page.tasks], page.total) == (["a2", "a1"], 2)
    page = await repo.list(TaskFilter(queues=frozenset({"default", "beta"})), offset=0, limit=10)
    assert [t.id for t in page.tasks] == ["b1", "d1"]

    active = TaskFilter(statuses=frozenset({TaskStatus.PENDING, TaskStatus.RUNNING}))
    counts = await repo.count_by_queue(active)
    assert {q: (c[TaskStatus.PENDING], c[TaskStatus.RUNNING]) for q, c in counts.items()} == {
        "alpha": (2, 0),
        "beta": (0, 1),
        "default": (1, 0),
    }
    assert set(counts["alpha"]) == set(TaskStatus)
    assert await repo.count_by_queue(TaskFilter(queues=frozenset({"none"}))) == {}


async def test_count_by_queue_over_a_creation_window(repo: Repo) -> None:
    await repo.insert(make("early", queue="alpha", created=0))
    await repo.insert(make("in1", queue="alpha", created=10))
    await repo.insert(make("in2", queue="beta", created=19.9995))  # kept to the millisecond
    await repo.insert(make("late", queue="beta", created=20))

    window = TaskFilter(created_after=at(10), created_before=at(20))
    counts = await repo.count_by_queue(window)
    assert {queue: sum(c.values()) for queue, c in counts.items()} == {"alpha": 1, "beta": 1}
