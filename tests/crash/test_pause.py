"""Fencing across processes: a worker paused (SIGSTOP) past its lease has its task rescued and
run elsewhere; when it resumes (SIGCONT), none of its writes lands."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from cam_tasks.domain import TaskStatus
from cam_tasks.repository import MongoTaskRepository
from tests.crash.conftest import Spawn, executions, submit_probes
from tests.support.waiting import eventually

OPTIONS: dict[str, Any] = {
    "workers": 1,
    "lease_s": 2.0,
    "heartbeat_s": 0.4,
    "progress_s": 0.1,
    "rescue_s": 0.3,
    "poll_s": 0.1,
}


@pytest.mark.timeout(60)
async def test_a_paused_process_writes_nothing_after_its_task_was_rescued(
    wire_db: Any, wire_uri: str, spawn: Spawn
) -> None:
    """The paused process's run lasts 1 s, so on resuming it has finished and
    tries to complete (and to heartbeat), while the rescuer's second attempt (5 s) still runs.
    Every one of those writes is fenced off: the task keeps the second owner's state and ends
    with its result."""
    repo = MongoTaskRepository(wire_db)
    await repo.initialize()
    [task] = await submit_probes(repo, 1, first_run_s=1.0, duration_s=5.0)
    paused = await spawn(wire_uri, wire_db.name, **OPTIONS)
    await eventually(lambda: executions(wire_db, attempt=1), bool, interval_s=0.02)
    paused.send(signal.SIGSTOP)

    rescuer = await spawn(wire_uri, wire_db.name, **OPTIONS)
    await eventually(lambda: executions(wire_db, attempt=2), bool, interval_s=0.05)
    # The second attempt runs: reported progress of its own, its lease renewed.
    taken = await eventually(
        lambda: repo.get(task.id), lambda t: t.message == f"running on {rescuer.owner}"
    )
    assert (taken.status, taken.owner, taken.attempts) == (TaskStatus.RUNNING, rescuer.owner, 2)

    paused.send(signal.SIGCONT)
    # A graceful stop waits for every write the resumed process still wants to make.
    paused.send(signal.SIGTERM)
    assert await paused.wait(timeout_s=20) == 0, paused.log()

    during = await repo.get(task.id)
    assert (during.status, during.owner, during.attempts) == (TaskStatus.RUNNING, rescuer.owner, 2)
    assert during.message == f"running on {rescuer.owner}"
    assert [(r.owner, r.attempt, r.outcome) for r in during.history] == [
        (paused.owner, 1, "rescued")
    ]

    done = await eventually(lambda: repo.get(task.id), lambda t: t.status.is_terminal)
    assert done.status is TaskStatus.COMPLETED
    assert done.result == {"owner": rescuer.owner, "attempt": 2, "pid": rescuer.pid}
    assert done.message == f"done on {rescuer.owner}"
    assert [(r.owner, r.attempt, r.outcome) for r in done.history] == [
        (paused.owner, 1, "rescued"),
        (rescuer.owner, 2, "completed"),
    ]
    ran = [(e["owner"], e["attempt"]) for e in await executions(wire_db)]
    assert ran == [(paused.owner, 1), (rescuer.owner, 2)]
