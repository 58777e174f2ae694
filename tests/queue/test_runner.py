"""Whatever goes wrong in an attempt is recorded on the task at once as its error — by the
executor or by the runner's own machinery — and never left for the lease to expire.

Leases here are long (300 s) and every wait is bounded at 10 s: a task that is only settled by
its lease expiring makes these tests fail rather than pass slowly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from cam_tasks.domain import Lease, Progress, RetryPolicy, Task, TaskStatus, new_task
from cam_tasks.domain.clock import SystemClock
from cam_tasks.executor import ExecutorRegistry, TaskContext
from cam_tasks.queue import Dispatcher
from cam_tasks.repository.memory import MemoryTaskRepository
from tests.support.waiting import eventually

CLOCK = SystemClock()


class Params(BaseModel):
    n: int = 0


class Returning:
    """Returns what the test gives it."""

    type = "returning"
    params_model = Params

    def __init__(self, result: Any = None) -> None:
        self.result = result

    async def execute(self, params: Params, ctx: TaskContext) -> Any:
        return self.result


@dataclasses.dataclass
class Summary:
    rows: int
    at: datetime


class RefusingFirstComplete(MemoryTaskRepository):
    """The memory store, refusing the first ``complete`` write the way a store refuses a
    document it cannot encode."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    async def complete(
        self, lease: Lease, *, now: datetime, result: Any, progress: Progress | None = None
    ) -> Task:
        if not self.refused:
            self.refused += 1
            raise ValueError("cannot encode object: <Summary>")
        return await super().complete(lease, now=now, result=result, progress=progress)


def dispatcher(repo: MemoryTaskRepository, executor: Any) -> Dispatcher:
    return Dispatcher(
        repo,
        ExecutorRegistry([executor]),
        worker_count=1,
        buffer_size=0,
        lease_s=300.0,
        heartbeat_interval_s=0.05,
        progress_interval_s=0.02,
        rescue_interval_s=0.05,
        poll_interval_s=0.05,
        retry_policy=RetryPolicy(base_s=0.01, max_s=0.02),
    )


async def settled(
    repo: MemoryTaskRepository,
    executor: Any,
    *,
    max_retries: int = 0,
    execute: Callable[[Params, TaskContext], Any] | None = None,
) -> Task:
    """Run one task of ``executor`` until it is no longer running for the first time.

    ``execute`` replaces the executor's method once it is registered: the registry refuses a
    plain function, but a wrapper put in place later can still hide one."""
    await repo.initialize()
    running = dispatcher(repo, executor)
    if execute is not None:
        executor.execute = execute
    task = await repo.insert(
        new_task(
            task_type=executor.type,
            params={"n": 1},
            now=CLOCK.now(),
            max_retries=max_retries,
        )
    )
    async with running:
        return await eventually(
            lambda: repo.get(task.id),
            lambda t: t.status is not TaskStatus.RUNNING and t.attempts >= 1,
        )


async def test_an_execute_that_returns_no_coroutine_fails_the_task_at_once() -> None:
    done = await settled(MemoryTaskRepository(), Returning(), execute=lambda params, ctx: 1)
    assert done.status is TaskStatus.FAILED
    assert done.error is not None
    assert done.error.type == "TypeError"
    assert "returned int, not a coroutine" in done.error.message


async def test_an_execute_that_raises_when_called_is_retried_as_usual() -> None:
    def explode(params: Params, ctx: TaskContext) -> Any:
        raise RuntimeError("no session")

    done = await settled(MemoryTaskRepository(), Returning(), max_retries=2, execute=explode)
    assert done.status is TaskStatus.PENDING  # back for another attempt, not stuck running
    assert done.error is not None
    assert (done.error.type, done.error.message) == ("RuntimeError", "no session")


async def test_a_result_that_is_not_json_able_fails_with_the_reason() -> None:
    done = await settled(MemoryTaskRepository(), Returning({"when": object()}), max_retries=3)
    assert done.status is TaskStatus.FAILED
    assert done.attempts == 1  # retrying cannot make it JSON-able
    assert done.error is not None
    assert done.error.type == "InvalidResultError"
    assert "not JSON-able" in done.error.message


async def test_a_result_is_stored_as_its_json_form() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=CLOCK.now().tzinfo)
    done = await settled(MemoryTaskRepository(), Returning(Summary(rows=3, at=at)))
    assert done.status is TaskStatus.COMPLETED
    assert done.result == {"rows": 3, "at": "2026-01-02T03:04:05+00:00"}


async def test_an_outcome_the_store_refuses_is_recorded_as_the_error_at_once() -> None:
    repo = RefusingFirstComplete()
    done = await settled(repo, Returning({"rows": 1}), max_retries=1)
    assert repo.refused == 1
    assert done.status is TaskStatus.PENDING
    assert done.error is not None
    assert (done.error.type, done.error.message) == (
        "ValueError",
        "cannot encode object: <Summary>",
    )


async def test_stored_params_the_model_no_longer_accepts_fail_permanently() -> None:
    repo = MemoryTaskRepository()
    await repo.initialize()
    executor = Returning()
    task = await repo.insert(
        new_task(task_type="returning", params={"n": "x"}, now=CLOCK.now(), max_retries=3)
    )
    async with dispatcher(repo, executor):
        done = await eventually(lambda: repo.get(task.id), lambda t: t.status.is_terminal)
    assert done.status is TaskStatus.FAILED
    assert done.error is not None
    assert done.error.message == "stored params no longer valid: 1 error(s)"
