"""SIGTERM drains a worker process: nothing is claimed after the signal, running tasks finish
inside the grace period, and those that cannot are handed back without spending an attempt."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cam_tasks.domain import TaskStatus
from cam_tasks.repository import MongoTaskRepository
from tests.crash.conftest import Spawn, executions, runs_per_task, submit_probes
from tests.support.waiting import eventually

OPTIONS: dict[str, Any] = {"lease_s": 3.0, "heartbeat_s": 0.5, "rescue_s": 0.5, "poll_s": 0.1}


async def running_on(database: Any, owner: str) -> set[str]:
    """Ids of the tasks ``owner`` runs whose execution has started (recorded by the probe)."""
    claimed = await database["tasks"].find({"status": "running", "owner": owner}).to_list(None)
    started = {e["task_id"] for e in await executions(database, owner=owner)}
    return {document["_id"] for document in claimed} & started


@pytest.mark.timeout(60)
async def test_sigterm_lets_running_tasks_finish_and_claims_nothing_more(
    wire_db: Any, wire_uri: str, spawn: Spawn
) -> None:
    """4 workers, 10 tasks of 2 s, grace 10 s: after SIGTERM the 4 running tasks complete
    (before the grace period ends), each ran once, and the other 6 were never claimed."""
    repo = MongoTaskRepository(wire_db)
    await repo.initialize()
    tasks = await submit_probes(repo, 10, duration_s=2.0)
    worker = await spawn(wire_uri, wire_db.name, workers=4, grace_s=10.0, **OPTIONS)
    running = await eventually(
        lambda: running_on(wire_db, worker.owner), lambda ids: len(ids) == 4, interval_s=0.05
    )
    signalled_at = datetime.now(UTC)
    worker.send(signal.SIGTERM)
    assert await worker.wait(timeout_s=20) == 0, worker.log()

    for task in tasks:
        stored = await repo.get(task.id)
        if task.id in running:
            assert stored.status is TaskStatus.COMPLETED
            assert stored.attempts == 1
            assert [(r.owner, r.outcome) for r in stored.history] == [(worker.owner, "completed")]
            assert stored.completed_at is not None
            assert stored.completed_at < signalled_at + timedelta(seconds=10)
        else:  # never claimed: no attempt, no history
            assert stored.status is TaskStatus.PENDING
            assert (stored.attempts, stored.history, stored.owner) == (0, (), None)
    recorded = await executions(wire_db)
    assert runs_per_task(recorded) == dict.fromkeys(running, 1)
    assert all("finished_at" in e and "interrupted_at" not in e for e in recorded)


@pytest.mark.timeout(60)
async def test_tasks_longer_than_the_grace_period_come_back_pending_for_another_process(
    wire_db: Any, wire_uri: str, spawn: Spawn
) -> None:
    """3 tasks whose first run lasts 30 s, grace 0.5 s: SIGTERM interrupts them and hands
    them back as pending with their attempt given back; a second process then completes them
    as their first counted attempt."""
    repo = MongoTaskRepository(wire_db)
    await repo.initialize()
    tasks = await submit_probes(repo, 3, first_run_s=30.0, duration_s=0.2)
    first = await spawn(wire_uri, wire_db.name, workers=3, grace_s=0.5, **OPTIONS)
    await eventually(
        lambda: running_on(wire_db, first.owner), lambda ids: len(ids) == 3, interval_s=0.05
    )
    first.send(signal.SIGTERM)
    assert await first.wait(timeout_s=20) == 0, first.log()

    for task in tasks:
        stored = await repo.get(task.id)
        assert stored.status is TaskStatus.PENDING
        assert (stored.attempts, stored.owner, stored.lease_until) == (0, None, None)
        assert [(r.owner, r.outcome) for r in stored.history] == [(first.owner, "released")]
    interrupted = await executions(wire_db, owner=first.owner)
    assert len(interrupted) == 3
    assert all("interrupted_at" in e and "finished_at" not in e for e in interrupted)

    second = await spawn(wire_uri, wire_db.name, workers=3, **OPTIONS)
    for task_id in [task.id for task in tasks]:
        done = await eventually(
            lambda task_id=task_id: repo.get(task_id), lambda t: t.status.is_terminal
        )
        assert done.status is TaskStatus.COMPLETED
        assert done.attempts == 1  # the interrupted run did not count
        assert done.result == {"owner": second.owner, "attempt": 1, "pid": second.pid}
        assert [(r.owner, r.outcome) for r in done.history] == [
            (first.owner, "released"),
            (second.owner, "completed"),
        ]
