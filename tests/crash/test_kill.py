"""A worker process killed with SIGKILL loses nothing: its tasks are rescued and finished by
the other instance, and only the tasks it had in flight may run twice."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest

from cam_tasks.domain import Priority, TaskStatus
from cam_tasks.repository import MongoTaskRepository
from tests.crash.conftest import (
    Spawn,
    all_terminal,
    executions,
    runs_per_task,
    statuses,
    submit_probes,
)
from tests.support.waiting import eventually

#: Sized for this wire server: 50 tasks renewing on one process while another works through a
#: backlog take SecantusDB, on a loaded 2-core machine, more than 3 s per round of renewals.
LEASE_S = 5.0
RESCUE_S = 0.5
#: "A few seconds" after lease + sweep: the survivor claims and reruns the 50 rescued tasks
#: (this server manages about 20 tasks a second on a loaded 2-core machine).
SLACK_S = 8.0
OPTIONS: dict[str, Any] = {
    "workers": 50,
    "lease_s": LEASE_S,
    "heartbeat_s": 1.25,
    "rescue_s": RESCUE_S,
    "poll_s": 0.2,
}


@pytest.mark.timeout(120)
async def test_kill_9_loses_nothing_and_repeats_only_the_tasks_in_flight(
    wire_db: Any, wire_uri: str, spawn: Spawn
) -> None:
    """200 tasks: 150 instant high-priority ones and 50 long ones. The victim (50 workers,
    started first) runs the instant ones, then takes the 50 long ones; a second process
    starts, and the victim is killed while those 50 run on it. Every task then completes
    within lease + sweep + a few seconds; the only tasks executed twice are among those the
    victim held when it died, at most twice each."""
    repo = MongoTaskRepository(wire_db)
    await repo.initialize()
    short = await submit_probes(repo, 150, priority=Priority.HIGH)
    # The long ones run 90 s the first time, so they are surely in flight at the kill;
    # a rerun is short.
    long = await submit_probes(repo, 50, first_run_s=90.0, duration_s=0.2)
    submitted = {task.id for task in [*long, *short]}
    victim = await spawn(wire_uri, wire_db.name, **OPTIONS)

    async def running_on_victim() -> int:
        count: int = await wire_db["tasks"].count_documents(
            {"status": "running", "owner": victim.owner}
        )
        return count

    await eventually(running_on_victim, lambda n: n == 50, timeout_s=40, interval_s=0.1)
    survivor = await spawn(wire_uri, wire_db.name, **OPTIONS)
    assert await running_on_victim() == 50
    victim.send(signal.SIGKILL)
    assert await victim.wait() == -signal.SIGKILL
    killed_at = time.monotonic()
    # Nothing can change these until their lease expires: they are exactly what was in flight.
    in_flight = {
        document["_id"]
        for document in await wire_db["tasks"]
        .find({"status": "running", "owner": victim.owner}, {"_id": True})
        .to_list(None)
    }
    assert len(in_flight) == 50

    await eventually(
        lambda: statuses(wire_db),
        all_terminal,
        timeout_s=LEASE_S + RESCUE_S + SLACK_S,
        interval_s=0.2,
    )
    elapsed_s = time.monotonic() - killed_at

    counts = await statuses(wire_db)
    assert counts == {TaskStatus.COMPLETED: 200}, (counts, survivor.log())
    stored = {document["_id"] for document in await wire_db["tasks"].find().to_list(None)}
    assert stored == submitted  # none lost, none made up

    runs = runs_per_task(await executions(wire_db))
    assert set(runs) == submitted
    repeated = {task_id for task_id, count in runs.items() if count > 1}
    assert repeated <= in_flight, "a task not in flight on the killed process ran twice"
    assert max(runs.values()) <= 2
    assert sum(runs.values()) - len(runs) <= len(in_flight)
    histories = await asyncio.gather(*(repo.get(task_id) for task_id in in_flight))
    for task in histories:
        outcomes = [(record.owner, record.outcome) for record in task.history]
        assert outcomes == [(victim.owner, "rescued"), (survivor.owner, "completed")], outcomes
    print(f"all terminal {elapsed_s:.1f} s after the kill")
