"""The dispatcher runs claimed tasks to exactly one recorded outcome each."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from cam_tasks.domain import (
    PermanentError,
    RetryableError,
    RetryPolicy,
    Task,
    TaskStatus,
    new_task,
)
from cam_tasks.domain.clock import SystemClock
from cam_tasks.executor import ExecutorRegistry, TaskContext
from cam_tasks.queue import Dispatcher
from cam_tasks.repository.memory import MemoryTaskRepository
from tests.support.waiting import eventually

CLOCK = SystemClock()


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = 0


class Recording:
    """A real executor that records what it ran and can be steered per test."""

    type = "record"
    params_model = Params

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.projects: dict[str, str | None] = {}
        self.running = 0
        self.max_running = 0
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.behaviour: dict[str, Any] = {}

    async def execute(self, params: Params, ctx: TaskContext) -> Any:
        self.runs[ctx.task_id] += 1
        self.projects[ctx.task_id] = ctx.project_id
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.started.set()
        try:
            mode = self.behaviour.get("mode", "ok")
            if mode == "block":
                ctx.report(42, "halfway", step=1, total_steps=2)
                ctx.partial_result = {"done": 1}
                await self.release.wait()
            elif mode == "yield":
                await asyncio.sleep(0)
            elif mode == "permanent":
                raise PermanentError("bad account")
            elif mode == "retry_once" and ctx.attempt == 1:
                raise RetryableError("throttled", delay_s=0)
            elif mode == "always_fail":
                raise RuntimeError("boom")
            elif mode == "unjsonable":
                return {"when": object()}
            ctx.report(100, "done")
            return {"n": params.n, "attempt": ctx.attempt}
        finally:
            self.running -= 1


@pytest.fixture
def repo() -> MemoryTaskRepository:
    return MemoryTaskRepository()


@pytest.fixture
def executor() -> Recording:
    return Recording()


def make_dispatcher(repo: MemoryTaskRepository, executor: Recording, **kw: Any) -> Dispatcher:
    options: dict[str, Any] = {
        "worker_count": 2,
        "buffer_size": 2,
        "lease_s": 2.0,
        "heartbeat_interval_s": 0.05,
        "progress_interval_s": 0.02,
        "rescue_interval_s": 0.05,
        "poll_interval_s": 0.05,
        "shutdown_timeout_s": 5.0,
        "retry_policy": RetryPolicy(base_s=0.01, max_s=0.02),
    }
    options.update(kw)
    return Dispatcher(repo, ExecutorRegistry([executor]), **options)


async def submit(repo: MemoryTaskRepository, **kw: Any) -> Task:
    task = await repo.insert(new_task(task_type="record", params={"n": 1}, now=CLOCK.now(), **kw))
    return task


async def final(repo: MemoryTaskRepository, task_id: str, timeout_s: float = 10.0) -> Task:
    return await eventually(
        lambda: repo.get(task_id), lambda t: t.status.is_terminal, timeout_s=timeout_s
    )


async def test_a_task_runs_to_completed_with_its_result(repo, executor) -> None:
    await repo.initialize()
    task = await submit(repo)
    async with make_dispatcher(repo, executor):
        done = await final(repo, task.id)
    assert done.status is TaskStatus.COMPLETED
    assert done.result == {"n": 1, "attempt": 1}
    assert done.progress == 100
    assert done.message == "done"
    assert done.attempts == 1
    assert done.owner is None
    assert [h.outcome for h in done.history] == ["completed"]


async def test_200_tasks_on_8_workers_never_exceed_8_and_run_once(repo, executor) -> None:
    await repo.initialize()
    executor.behaviour["mode"] = "yield"
    tasks = [await submit(repo) for _ in range(200)]
    async with make_dispatcher(repo, executor, worker_count=8, buffer_size=16):
        for task in tasks:
            await final(repo, task.id)
    counts = await repo.count_by_status()
    assert counts[TaskStatus.COMPLETED] == 200
    assert executor.max_running <= 8
    assert executor.max_running > 1  # it really ran in parallel
    assert set(executor.runs.values()) == {1}
    assert len(executor.runs) == 200


async def test_a_retryable_error_is_retried_then_completes(repo, executor) -> None:
    await repo.initialize()
    executor.behaviour["mode"] = "retry_once"
    task = await submit(repo, max_retries=2)
    async with make_dispatcher(repo, executor):
        done = await final(repo, task.id)
    assert done.status is TaskStatus.COMPLETED
    assert done.attempts == 2
    assert [h.outcome for h in done.history] == ["retry", "completed"]
    assert done.history[0].error is not None
    assert done.history[0].error.type == "RetryableError"


async def test_a_permanent_error_fails_at_once(repo, executor) -> None:
    await repo.initialize()
    executor.behaviour["mode"] = "permanent"
    task = await submit(repo, max_retries=5)
    async with make_dispatcher(repo, executor):
        done = await final(repo, task.id)
    assert done.status is TaskStatus.FAILED
    assert done.attempts == 1
    assert done.error is not None
    assert (done.error.type, done.error.message) == ("PermanentError", "bad account")


async def test_failures_retry_until_attempts_run_out(repo, executor) -> None:
    await repo.initialize()
    executor.behaviour["mode"] = "always_fail"
    task = await submit(repo, max_retries=2)
    async with make_dispatcher(repo, executor):
        done = await final(repo, task.id)
    assert done.status is TaskStatus.FAILED
    assert done.attempts == 3
    assert [h.outcome for h in done.history] == ["retry", "retry", "failed"]
    assert done.error is not None
    assert done.error.type == "RuntimeError"


async def test_a_result_that_is_not_json_fails_permanently(repo, executor) -> None:
    await repo.initialize()
    executor.behaviour["mode"] = "unjsonable"
    task = await submit(repo, max_retries=3)
    async with make_dispatcher(repo, executor):
        done = await final(repo, task.id)
    assert done.status is TaskStatus.FAILED
    assert done.attempts == 1


async def test_a_timeout_fails_the_attempt_with_error_timeout(repo, executor) -> None:
    await repo.initialize()
    executor.behaviour["mode"] = "block"
    task = await submit(repo, max_retries=0, timeout_s=0.05)
    async with make_dispatcher(repo, executor):
        done = await final(repo, task.id)
    assert done.status is TaskStatus.FAILED
    assert done.error is not None
    assert done.error.type == "timeout"


async def test_cancel_in_the_same_process_stops_at_once_keeping_partial_result(
    repo, executor
) -> None:
    await repo.initialize()
    executor.behaviour["mode"] = "block"
    task = await submit(repo)
    async with make_dispatcher(repo, executor, heartbeat_interval_s=0.5) as dispatcher:
        await asyncio.wait_for(executor.started.wait(), 5)
        await repo.request_cancel(task.id, now=CLOCK.now())
        dispatcher.cancel_requested(task.id)
        done = await final(repo, task.id)
    assert done.status is TaskStatus.CANCELLED
    assert done.result == {"done": 1}
    assert sum(executor.runs.values()) == 1


async def test_cancel_requested_elsewhere_is_seen_by_heartbeat(repo, executor) -> None:
    await repo.initialize()
    executor.behaviour["mode"] = "block"
    task = await submit(repo)
    async with make_dispatcher(repo, executor):
        await asyncio.wait_for(executor.started.wait(), 5)
        await repo.request_cancel(task.id, now=CLOCK.now())  # no local notification
        done = await final(repo, task.id)
    assert done.status is TaskStatus.CANCELLED


async def test_progress_is_written_while_running(repo, executor) -> None:
    await repo.initialize()
    executor.behaviour["mode"] = "block"
    task = await submit(repo)
    async with make_dispatcher(repo, executor):
        seen = await eventually(lambda: repo.get(task.id), lambda t: t.progress == 42)
        assert (seen.message, seen.step, seen.total_steps) == ("halfway", 1, 2)
        executor.release.set()
        await final(repo, task.id)


async def test_graceful_stop_hands_back_unfinished_tasks_without_spending_an_attempt(
    repo, executor
) -> None:
    await repo.initialize()
    executor.behaviour["mode"] = "block"
    tasks = [await submit(repo) for _ in range(6)]
    dispatcher = make_dispatcher(repo, executor, shutdown_timeout_s=0.05)
    await dispatcher.start()
    await asyncio.wait_for(executor.started.wait(), 5)
    await dispatcher.close()
    await dispatcher.close()  # idempotent
    for task in tasks:
        after = await repo.get(task.id)
        assert after.status is TaskStatus.PENDING
        assert after.attempts == 0
        assert after.owner is None


async def test_graceful_stop_lets_running_tasks_finish_within_the_grace_period(
    repo, executor
) -> None:
    await repo.initialize()
    executor.behaviour["mode"] = "block"
    task = await submit(repo)
    dispatcher = make_dispatcher(repo, executor, shutdown_timeout_s=10)
    await dispatcher.start()
    await asyncio.wait_for(executor.started.wait(), 5)
    closing = asyncio.create_task(dispatcher.close())
    await eventually(lambda: asyncio.sleep(0, not dispatcher.running), bool)
    executor.release.set()
    await closing
    assert (await repo.get(task.id)).status is TaskStatus.COMPLETED
    assert sum(executor.runs.values()) == 1


async def test_nothing_is_claimed_after_stop(repo, executor) -> None:
    await repo.initialize()
    dispatcher = make_dispatcher(repo, executor)
    await dispatcher.start()
    await dispatcher.close()
    task = await submit(repo)
    dispatcher.task_submitted(task)
    assert (await repo.get(task.id)).status is TaskStatus.PENDING


async def test_a_lost_lease_stops_the_execution_without_writing(repo, executor) -> None:
    await repo.initialize()
    executor.behaviour["mode"] = "block"
    task = await submit(repo, max_retries=5)
    dispatcher = make_dispatcher(
        repo, executor, worker_count=1, buffer_size=0, shutdown_timeout_s=0.05
    )
    await dispatcher.start()
    try:
        await asyncio.wait_for(executor.started.wait(), 5)
        running = await repo.get(task.id)
        assert running.lease_until is not None
        # Another instance decides the lease expired (e.g. this process was paused).
        rescued = await repo.rescue_expired(now=running.lease_until.replace(year=2100))
        assert [t.id for t in rescued] == [task.id]
        await eventually(lambda: asyncio.sleep(0, executor.running), lambda n: n == 0)
    finally:
        await dispatcher.close()
    after = await repo.get(task.id)
    # The first attempt's only record is the rescue: the worker that lost it wrote nothing.
    assert [h.outcome for h in after.history if h.attempt == 1] == ["rescued"]
    assert after.status is TaskStatus.PENDING


async def test_tasks_beyond_the_buffer_wait_in_the_store_and_all_run(repo, executor) -> None:
    await repo.initialize()
    executor.behaviour["mode"] = "yield"
    async with make_dispatcher(repo, executor, worker_count=1, buffer_size=1) as dispatcher:
        tasks = [await submit(repo) for _ in range(30)]
        for task in tasks:
            dispatcher.task_submitted(task)
        for task in tasks:
            assert (await final(repo, task.id)).status is TaskStatus.COMPLETED
        assert dispatcher.stats().held <= 2


async def test_an_executor_learns_the_project_of_its_task(repo, executor) -> None:
    await repo.initialize()
    mine = await submit(repo, project_id="project-a")
    nobodys = await submit(repo)
    async with make_dispatcher(repo, executor):
        await final(repo, mine.id)
        await final(repo, nobodys.id)
    assert executor.projects == {mine.id: "project-a", nobodys.id: None}
