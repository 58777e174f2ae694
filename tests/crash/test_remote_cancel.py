"""Cancelling, from one instance, a task that runs in another process: the owner learns of it
by its next heartbeat and stops it."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from cam_tasks.domain import SystemClock, TaskStatus
from cam_tasks.executor import ExecutorRegistry
from cam_tasks.repository import MongoTaskRepository
from cam_tasks.service import TaskService
from tests.crash.conftest import Spawn, executions
from tests.crash.worker_process import PROBE, ProbeExecutor
from tests.support.waiting import eventually

HEARTBEAT_S = 0.5
#: "Within one heartbeat": the lease keeper looks every progress interval (0.1 s) and renews
#: what is due, so the request is seen within HEARTBEAT_S + 0.1 s; the rest is the
#: acknowledging write and this test's polling, on a loaded 2-core machine.
MARGIN_S = 1.0


@pytest.mark.timeout(60)
async def test_a_cancel_from_another_instance_stops_the_task_within_a_heartbeat(
    wire_db: Any, wire_uri: str, spawn: Spawn
) -> None:
    worker = await spawn(
        wire_uri,
        wire_db.name,
        workers=2,
        lease_s=3.0,
        heartbeat_s=HEARTBEAT_S,
        progress_s=0.1,
        poll_s=0.1,
    )
    # This test process is the other instance: a service over the same store, no dispatcher.
    repo = MongoTaskRepository(wire_db)
    await repo.initialize()
    registry = ExecutorRegistry([ProbeExecutor(wire_db, owner="validation only")])
    service = TaskService(repo, registry, clock=SystemClock())
    task = await service.submit(PROBE, {"duration_s": 60.0})
    await eventually(lambda: executions(wire_db, task_id=task.id), bool, interval_s=0.02)

    requested = await service.cancel(task.id)
    asked_at = time.monotonic()
    assert (requested.status, requested.cancel_requested) == (TaskStatus.RUNNING, True)
    done = await eventually(
        lambda: service.get(task.id),
        lambda t: t.status.is_terminal,
        timeout_s=HEARTBEAT_S + MARGIN_S,
        interval_s=0.02,
    )
    took_s = time.monotonic() - asked_at

    assert done.status is TaskStatus.CANCELLED
    assert done.error is not None
    assert done.error.type == "cancelled"
    assert done.result == {"owner": worker.owner, "attempt": 1, "pid": worker.pid, "partial": True}
    assert [(r.owner, r.outcome) for r in done.history] == [(worker.owner, "cancelled")]

    worker.send(signal.SIGTERM)
    assert await worker.wait() == 0, worker.log()
    [execution] = await executions(wire_db)
    assert "interrupted_at" in execution
    assert "finished_at" not in execution
    assert (await service.get(task.id)) == done  # never retried
    print(f"cancelled {took_s:.2f} s after the request")
