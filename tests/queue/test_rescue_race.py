"""Rescue racing everything at once: two sweepers and every owner finishing, concurrently.

The repository contract suite races one sweep against one finish, round after round. Here all
the races run together, so on the wire server the sweepers' reads and conditional writes
really interleave with the owners' fenced writes and with each other: every attempt must end
up recorded exactly once, by its owner or by one sweeper, and a finished task is never
rewritten. (In memory every call is atomic, so there it checks the outcome rules only.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from cam_tasks.domain import Progress, TaskLostError, TaskStatus
from tests.conftest import Backend
from tests.repository.test_task_repository_contract import BOOM, at, make

#: Per backend: how many tasks race at once.
TASKS = {"memory": 200, "mongomock": 200, "wire": 60}


async def test_sweepers_and_owners_racing_record_every_attempt_exactly_once(
    backend: Backend,
) -> None:
    repo = backend.tasks()
    await repo.initialize()
    count = TASKS[backend.name]
    leases = []
    for i in range(count):
        task = await repo.insert(make(task_type=f"race{i}"))
        claimed = await repo.claim(types=[task.type], owner=f"w{i}", now=at(0), lease_s=10)
        assert claimed is not None
        leases.append(claimed.lease)

    # Every lease expired at 10: at 20 the sweepers may take any task whose owner has not
    # written first. Owners complete, fail or renew (a renewal at 20 is a valid write too).
    def owner_write(i: int) -> Any:
        lease, now = leases[i], at(20)
        if i % 3 == 0:
            return repo.complete(lease, now=now, result=i)
        if i % 3 == 1:
            return repo.fail(lease, now=now, error=BOOM)
        return repo.heartbeat(lease, now=now, lease_s=30, progress=Progress(percent=50))

    async def owners() -> list[Any]:
        # One after another from the last task back, while the sweepers walk from the first:
        # they meet somewhere in the middle, where the writes really race.
        results: dict[int, Any] = {}
        for i in reversed(range(count)):
            try:
                results[i] = await owner_write(i)
            except TaskLostError as lost:
                results[i] = lost
        return [results[i] for i in range(count)]

    first, second, writes = await asyncio.gather(
        repo.rescue_expired(now=at(20), limit=count),
        repo.rescue_expired(now=at(20), limit=count),
        owners(),
    )
    rescued = [task.id for task in (*first, *second)]
    assert len(rescued) == len(set(rescued)), "two sweepers rescued one task"

    for i, (lease, write) in enumerate(zip(leases, writes, strict=True)):
        stored = await repo.get(lease.task_id)
        records = [record for record in stored.history if record.attempt == 1]
        if isinstance(write, TaskLostError):  # a sweeper won: the owner wrote nothing
            assert lease.task_id in rescued
            assert stored.status is TaskStatus.PENDING
            assert [(r.owner, r.outcome) for r in records] == [(f"w{i}", "rescued")]
        else:  # the owner won: no sweeper touched it afterwards
            assert not isinstance(write, BaseException), write
            assert lease.task_id not in rescued
            if i % 3 == 2:
                assert stored.status is TaskStatus.RUNNING
                assert (stored.lease_until, stored.progress) == (at(50), 50)
                assert records == []
            else:
                expected = TaskStatus.COMPLETED if i % 3 == 0 else TaskStatus.FAILED
                assert stored.status is expected
                assert [r.outcome for r in records] == [expected.value]
