"""Two worker processes racing for the same tasks: every (task, attempt) is claimed once."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from cam_tasks.domain import TaskStatus
from cam_tasks.repository import MongoTaskRepository
from tests.crash.conftest import Spawn, all_terminal, executions, statuses, submit_probes
from tests.support.waiting import eventually

#: The issue asks for "a few thousand". SecantusDB sorts every due task in memory for each
#: claim (it never walks an index in sort order), so a claim costs O(pending) there, and on
#: this 2-core machine two claimers complete only about 12 instant tasks a second even with a
#: small backlog. 240 keeps the test near 20 s; against a real MongoDB raise it: nothing below
#: depends on the count.
TASKS = 240
#: Tasks are submitted in waves that keep at most this many pending: a small backlog is both
#: cheap to claim from here and the fiercest contention (every claimer wants the same few).
BACKLOG = 40
OPTIONS: dict[str, Any] = {
    "workers": 8,
    "buffer": 8,
    "lease_s": 10.0,
    "heartbeat_s": 2.0,
    "rescue_s": 1.0,
    "poll_s": 0.05,
}


@pytest.mark.timeout(150)
async def test_two_processes_claim_every_task_attempt_exactly_once(
    wire_db: Any, wire_uri: str, spawn: Spawn
) -> None:
    """240 instant tasks, two processes of 8 workers (and 8 buffered claims) each: every task
    completes in one attempt, each (task, attempt) was executed exactly once, and both
    processes took a real share of the work (they did race)."""
    repo = MongoTaskRepository(wire_db)
    await repo.initialize()
    first, second = await asyncio.gather(
        spawn(wire_uri, wire_db.name, **OPTIONS), spawn(wire_uri, wire_db.name, **OPTIONS)
    )

    async def pending() -> int:
        count: int = await wire_db["tasks"].count_documents({"status": "pending"})
        return count

    submitted: set[str] = set()
    while len(submitted) < TASKS:
        await eventually(pending, lambda n: n <= BACKLOG // 2, timeout_s=30, interval_s=0.05)
        wave = await submit_probes(repo, min(BACKLOG // 2, TASKS - len(submitted)))
        submitted.update(task.id for task in wave)
    await eventually(lambda: statuses(wire_db), all_terminal, timeout_s=60, interval_s=0.2)

    assert await statuses(wire_db) == {TaskStatus.COMPLETED: TASKS}
    recorded = await executions(wire_db)
    claims = Counter((e["task_id"], e["attempt"]) for e in recorded)
    assert set(claims) == {(task_id, 1) for task_id in submitted}
    assert set(claims.values()) == {1}
    share = Counter(e["owner"] for e in recorded)
    assert set(share) == {first.owner, second.owner}
    assert min(share.values()) >= TASKS // 10, share
    documents = await wire_db["tasks"].find({}, {"attempts": True, "history": True}).to_list(None)
    assert all(d["attempts"] == 1 and len(d["history"]) == 1 for d in documents)
