"""insert_many: one round trip for a batch, and the same answers insert gives task by task.

Runs on every backend of the repository contract (memory, mongomock, the wire when
``MONGODB_URI`` is set), through the same fixtures.
"""

from __future__ import annotations

from typing import Any

from cam_tasks.domain import Action, Task, TaskChange, TaskFilter, TaskStatus
from cam_tasks.repository import MemoryTaskRepository, ObservedTaskRepository
from tests.repository import test_task_repository_contract as contract
from tests.repository.test_task_repository_contract import Repo, at, make

# The contract suite's fixtures (``backend`` comes from tests/conftest.py).
clock = contract.clock
make_repo = contract.make_repo
repo = contract.repo


async def test_a_batch_is_stored_and_returned_in_order_as_get_reads_it(repo: Repo) -> None:
    tasks = [make(created=n, idempotency_key=f"key-{n}") for n in range(5)]

    stored = await repo.insert_many(tasks)

    assert [task.id for task in stored] == [task.id for task in tasks]
    assert stored == tasks
    assert [await repo.get(task.id) for task in tasks] == stored
    page = await repo.list(TaskFilter(), offset=0, limit=10)
    assert page.total == 5


async def test_an_empty_batch_stores_nothing(repo: Repo) -> None:
    assert await repo.insert_many([]) == []
    assert (await repo.list(TaskFilter(), offset=0, limit=10)).total == 0


async def test_a_taken_key_returns_its_holder_and_the_rest_are_stored(repo: Repo) -> None:
    holder = await repo.insert(make(created=0, idempotency_key="same"))
    first, duplicate, last = make(created=1), make(created=2, idempotency_key="same"), make()

    stored = await repo.insert_many([first, duplicate, last])

    assert stored == [first, holder, last]
    assert (await repo.list(TaskFilter(), offset=0, limit=10)).total == 3


async def test_a_key_repeated_inside_the_batch_yields_one_task(repo: Repo) -> None:
    one, two = make(created=0, idempotency_key="k"), make(created=1, idempotency_key="k")

    stored = await repo.insert_many([one, two])

    assert stored == [one, one]
    assert (await repo.list(TaskFilter(), offset=0, limit=10)).total == 1


async def test_a_stored_id_is_never_overwritten(repo: Repo) -> None:
    original = await repo.insert(make("01900000-0000-7000-8000-000000000001", created=0))
    again = make("01900000-0000-7000-8000-000000000001", created=5, priority=3)

    stored = await repo.insert_many([again])

    assert stored == [original]
    assert (await repo.get(original.id)).priority == original.priority


async def test_batched_tasks_are_claimed_in_claim_order(repo: Repo) -> None:
    low, high = make(created=0, priority=0), make(created=1, priority=3)
    await repo.insert_many([low, high])

    first = await repo.claim(types=["sync"], owner="w", now=at(2), lease_s=30)
    second = await repo.claim(types=["sync"], owner="w", now=at(2), lease_s=30)

    assert first is not None
    assert second is not None
    assert (first.id, second.id) == (high.id, low.id)
    assert first.status is TaskStatus.RUNNING


async def test_the_observed_store_announces_every_task_of_a_batch() -> None:
    changes: list[TaskChange] = []
    observed = ObservedTaskRepository(MemoryTaskRepository())
    observed.add_listener(changes.append)
    tasks: list[Task] = [make(created=n) for n in range(3)]

    stored = await observed.insert_many(tasks)

    announced: list[Any] = [(change.action, change.task) for change in changes]
    assert announced == [(Action.SUBMIT, task) for task in stored]
