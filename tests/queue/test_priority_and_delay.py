"""Which due task runs first, and when a delayed task runs.

Priorities: with one worker, tasks run by priority (urgent > high > normal > low); at equal
priority by ``run_at``, then in submission order. Fairness: every ``fair_claim_every``-th claim
takes the oldest due task instead, so under an endless stream of urgent work a low task with k
older tasks ahead of it still runs within N * (k + 1) claims; with 0, strict priority starves it.
Delays: a task never starts before its ``run_at``, and the dispatcher wakes for it on time
without polling for it.
"""

from __future__ import annotations

import builtins
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from cam_tasks.domain import (
    Clock,
    ConfigurationError,
    ManualClock,
    SystemClock,
    Task,
    TaskStatus,
)
from cam_tasks.executor import ExecutorRegistry, TaskContext
from cam_tasks.queue import Dispatcher
from cam_tasks.repository import MemoryTaskRepository, TaskRepository
from cam_tasks.service import TaskService
from tests.conftest import Backend
from tests.support.waiting import eventually


class LabelParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str


class OrderRecorder:
    """Records the order tasks start in (by label)."""

    type = "labelled"
    params_model: builtins.type[BaseModel] = LabelParams

    def __init__(self) -> None:
        self.order: list[str] = []

    async def execute(self, params: LabelParams, ctx: TaskContext) -> Any:
        self.order.append(params.label)
        return params.label


def single_worker(
    repository: TaskRepository, recorder: OrderRecorder, clock: Clock, **options: Any
) -> Dispatcher:
    settings: dict[str, Any] = {
        "worker_count": 1,
        "buffer_size": 0,  # claim one at a time: the claim order is the run order
        "lease_s": 3600.0,
        "heartbeat_interval_s": 60.0,
        "rescue_interval_s": 60.0,
        "poll_interval_s": 0.01,
    }
    settings.update(options)
    return Dispatcher(repository, ExecutorRegistry([recorder]), clock=clock, **settings)


@pytest.fixture
async def repository(backend: Backend) -> TaskRepository:
    repo = backend.tasks()
    await repo.initialize()
    return repo


async def completed(repository: TaskRepository, task: Task) -> Task:
    return await eventually(
        lambda: repository.get(task.id), lambda t: t.status is TaskStatus.COMPLETED
    )


async def test_one_worker_runs_by_priority_then_run_at_then_submission_order(
    repository: TaskRepository,
) -> None:
    clock = SystemClock()
    recorder = OrderRecorder()
    service = TaskService(repository, ExecutorRegistry([recorder]), clock=clock)
    past = clock.now() - timedelta(minutes=5)

    async def submit(label: str, priority: int | str, run_at: datetime) -> Task:
        return await service.submit("labelled", {"label": label}, priority=priority, run_at=run_at)

    # Submitted in an order that differs from the expected run order on every criterion.
    low = await submit("low", "low", past - timedelta(minutes=1))
    await submit("normal-late", "normal", past + timedelta(seconds=2))
    await submit("normal-1st", "normal", past)
    await submit("normal-2nd", "normal", past)
    await submit("normal-early", "normal", past - timedelta(seconds=30))
    await submit("high", 2, past + timedelta(minutes=1))
    await submit("urgent", "urgent", past + timedelta(minutes=2))
    await submit("normal-3rd", "normal", past)

    async with single_worker(repository, recorder, clock):
        await completed(repository, low)  # the last to run: every other one ran before
    assert recorder.order == [
        "urgent",
        "high",
        "normal-early",
        "normal-1st",
        "normal-2nd",
        "normal-3rd",
        "normal-late",
        "low",
    ]


class UrgentStream(OrderRecorder):
    """Records start order like :class:`OrderRecorder`; each ``urgent`` task submits the next
    one before it ends (``budget`` times), so a due urgent task is always waiting to be claimed
    until the budget is spent."""

    def __init__(self, budget: int) -> None:
        super().__init__()
        self.budget = budget
        self.service: TaskService | None = None

    async def execute(self, params: LabelParams, ctx: TaskContext) -> Any:
        label = await super().execute(params, ctx)
        if label == "urgent" and self.budget > 0:
            assert self.service is not None
            self.budget -= 1
            await self.service.submit("labelled", {"label": "urgent"}, priority="urgent")
        return label


async def start_stream(
    repository: TaskRepository, *, fair_claim_every: int, older: int, urgent: int, budget: int
) -> tuple[UrgentStream, Dispatcher, Task]:
    """``older`` normal tasks, then the low task, then ``urgent`` urgent ones that keep
    replacing themselves; returns the low task and a single-worker dispatcher (not started)."""
    clock = SystemClock()
    stream = UrgentStream(budget)
    dispatcher = single_worker(repository, stream, clock, fair_claim_every=fair_claim_every)
    stream.service = TaskService(
        repository, ExecutorRegistry([stream]), clock=clock, notifier=dispatcher
    )
    for i in range(older):
        await stream.service.submit("labelled", {"label": f"older-{i}"}, priority="normal")
    low = await stream.service.submit("labelled", {"label": "low"}, priority="low")
    for _ in range(urgent):
        await stream.service.submit("labelled", {"label": "urgent"}, priority="urgent")
    return stream, dispatcher, low


@pytest.mark.parametrize(("every", "older"), [(1, 0), (4, 0), (4, 2), (10, 1)])
async def test_under_an_endless_urgent_stream_a_low_task_runs_within_the_bound(
    repository: TaskRepository, every: int, older: int
) -> None:
    bound = every * (older + 1)  # N * (k + 1) claims: docs/scheduling.md
    stream, dispatcher, low = await start_stream(
        repository, fair_claim_every=every, older=older, urgent=2, budget=bound + 5
    )
    async with dispatcher:
        await completed(repository, low)
    claims = stream.order.index("low") + 1
    assert claims <= bound
    # Precisely: claims N, 2N, … took the oldest due task; every other claim took an urgent one
    # (two were always waiting: the budget outlasts the bound).
    expected = ["urgent"] * bound
    for i in range(older):
        expected[every * (i + 1) - 1] = f"older-{i}"
    expected[bound - 1] = "low"
    assert stream.order[:bound] == expected


async def test_with_fair_claims_off_priority_is_strict_and_the_low_task_waits(
    repository: TaskRepository,
) -> None:
    budget = 40  # the low task's wait grows with the stream: it is bounded by nothing else
    stream, dispatcher, low = await start_stream(
        repository, fair_claim_every=0, older=1, urgent=2, budget=budget
    )
    async with dispatcher:
        await completed(repository, low)
    # Every urgent task (the 2 first and their 40 replacements), then the normal, then low.
    assert stream.order == ["urgent"] * (2 + budget) + ["older-0", "low"]


def test_fair_claim_every_must_not_be_negative() -> None:
    recorder = OrderRecorder()
    with pytest.raises(ConfigurationError, match="fair_claim_every"):
        single_worker(MemoryTaskRepository(), recorder, SystemClock(), fair_claim_every=-1)
    assert single_worker(MemoryTaskRepository(), recorder, SystemClock()).fair_claim_every == 10


async def test_a_delayed_task_starts_at_its_run_at_not_before_and_within_a_second() -> None:
    # The real clock, measured loosely: the poll interval is 30 s, so the start can only come
    # from the dispatcher sleeping until the task's run_at.
    clock = SystemClock()
    repository = MemoryTaskRepository()
    recorder = OrderRecorder()
    dispatcher = single_worker(repository, recorder, clock, poll_interval_s=30.0)
    service = TaskService(
        repository, ExecutorRegistry([recorder]), clock=clock, notifier=dispatcher
    )
    async with dispatcher:
        later = await service.submit("labelled", {"label": "later"}, delay_s=0.6)
        sooner = await service.submit(
            "labelled", {"label": "sooner"}, run_at=clock.now() + timedelta(seconds=0.3)
        )
        done = [await completed(repository, task) for task in (later, sooner)]
    assert recorder.order == ["sooner", "later"]
    for task in done:
        assert task.started_at is not None
        assert task.started_at >= task.run_at
        assert task.started_at - task.run_at < timedelta(seconds=1)


async def test_with_a_manual_clock_delayed_tasks_run_exactly_when_due_in_order() -> None:
    start = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    clock = ManualClock(start)
    repository = MemoryTaskRepository(clock=clock)
    recorder = OrderRecorder()
    dispatcher = single_worker(repository, recorder, clock)
    service = TaskService(
        repository, ExecutorRegistry([recorder]), clock=clock, notifier=dispatcher
    )

    def at(seconds: int) -> datetime:
        return start + timedelta(seconds=seconds)

    async def statuses(*tasks: Task) -> list[TaskStatus]:
        return [(await repository.get(t.id)).status for t in tasks]

    a = await service.submit("labelled", {"label": "a@30"}, run_at=at(30))
    b = await service.submit("labelled", {"label": "b@10"}, run_at=at(10))
    c = await service.submit("labelled", {"label": "c@20"}, run_at=at(20))
    d = await service.submit("labelled", {"label": "d@40-urgent"}, run_at=at(40), priority=3)
    pending = [TaskStatus.PENDING]
    async with dispatcher:
        # A task due now runs at once; the dispatcher has looked, and the delayed ones wait.
        probe = await service.submit("labelled", {"label": "probe"})
        await completed(repository, probe)
        assert await statuses(a, b, c, d) == pending * 4

        clock.set(at(10))  # exactly b's run_at
        await completed(repository, b)
        assert await statuses(a, c, d) == pending * 3

        clock.set(at(25))
        await completed(repository, c)
        assert await statuses(a, d) == pending * 2

        clock.set(at(60))  # a and d both due: priority first, though d's run_at is later
        await completed(repository, a)
        await completed(repository, d)
    assert recorder.order == ["probe", "b@10", "c@20", "d@40-urgent", "a@30"]
    done_b = await repository.get(b.id)
    assert done_b.started_at == at(10)
