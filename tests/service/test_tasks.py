"""TaskService: what a submit stores, what it refuses, and what operator actions do to a task."""

from __future__ import annotations

import builtins
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from cam_tasks.domain import (
    IllegalTransitionError,
    InvalidParamsError,
    ManualClock,
    Priority,
    Task,
    TaskError,
    TaskFilter,
    TaskNotFoundError,
    TaskStatus,
    UnknownTaskTypeError,
)
from cam_tasks.executor import ExecutorRegistry, TaskContext
from cam_tasks.repository.memory import MemoryTaskRepository
from cam_tasks.service import QueueFullError, TaskService

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class EchoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    times: int = Field(default=1, ge=1)


class EchoExecutor:
    type = "echo"
    params_model: builtins.type[BaseModel] = EchoParams
    max_retries = 5
    timeout_s = 30.0

    async def execute(self, params: EchoParams, ctx: TaskContext) -> Any:
        return params.text * params.times


class PlainParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlainExecutor:
    """An executor without defaults of its own: its tasks get the framework's."""

    type = "plain"
    params_model: builtins.type[BaseModel] = PlainParams

    async def execute(self, params: PlainParams, ctx: TaskContext) -> Any:
        return None


class RecordingNotifier:
    def __init__(self) -> None:
        self.submitted: list[str] = []
        self.cancelled: list[str] = []

    def task_submitted(self, task: Task) -> None:
        self.submitted.append(task.id)

    def cancel_requested(self, task_id: str) -> None:
        self.cancelled.append(task_id)


class BrokenNotifier:
    def task_submitted(self, task: Task) -> None:
        raise RuntimeError("dispatcher gone")

    def cancel_requested(self, task_id: str) -> None:
        raise RuntimeError("dispatcher gone")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def repository(clock: ManualClock) -> MemoryTaskRepository:
    return MemoryTaskRepository(clock=clock)


@pytest.fixture
def registry() -> ExecutorRegistry:
    return ExecutorRegistry([EchoExecutor(), PlainExecutor()])


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def service(
    repository: MemoryTaskRepository,
    registry: ExecutorRegistry,
    clock: ManualClock,
    notifier: RecordingNotifier,
) -> TaskService:
    return TaskService(repository, registry, clock=clock, notifier=notifier)


async def stored_count(repository: MemoryTaskRepository) -> int:
    return sum((await repository.count_by_status()).values())


async def running(repository: MemoryTaskRepository, clock: ManualClock) -> Task:
    claimed = await repository.claim(types={"echo"}, owner="w1", now=clock.now(), lease_s=60)
    assert claimed is not None
    return claimed


# -- submit ------------------------------------------------------------------------------------


async def test_submit_stores_a_pending_task_with_validated_params_and_executor_defaults(
    service: TaskService, repository: MemoryTaskRepository, notifier: RecordingNotifier
) -> None:
    task = await service.submit("echo", {"text": "hi"}, created_by="alice", project_id="p1")

    stored = await repository.get(task.id)
    assert stored == task
    assert stored.status is TaskStatus.PENDING
    assert stored.params == {"text": "hi", "times": 1}  # the model's defaults are stored
    assert stored.run_at == START
    assert stored.created_at == START
    assert stored.priority == Priority.NORMAL
    assert stored.max_retries == 5
    assert stored.timeout_s == 30.0
    assert stored.attempts == 0
    assert stored.created_by == "alice"
    assert stored.project_id == "p1"
    assert notifier.submitted == [task.id]


async def test_submit_without_executor_defaults_uses_the_framework_defaults(
    service: TaskService,
) -> None:
    task = await service.submit("plain", {})
    assert task.max_retries == 3
    assert task.timeout_s is None


async def test_explicit_retries_and_timeout_win_over_the_executor_defaults(
    service: TaskService,
) -> None:
    task = await service.submit("echo", {"text": "x"}, max_retries=0, timeout_s=2.5)
    assert (task.max_retries, task.timeout_s) == (0, 2.5)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("low", Priority.LOW),
        ("urgent", Priority.URGENT),
        ("HIGH", Priority.HIGH),
        (0, Priority.LOW),
        (3, Priority.URGENT),
        (Priority.HIGH, Priority.HIGH),
    ],
)
async def test_priority_accepts_names_and_their_ints(
    service: TaskService, given: int | str, expected: Priority
) -> None:
    task = await service.submit("echo", {"text": "x"}, priority=given)
    assert task.priority == expected


@pytest.mark.parametrize("given", ["top", "2", 7, -1, True])
async def test_other_priorities_are_invalid(
    service: TaskService, repository: MemoryTaskRepository, given: Any
) -> None:
    with pytest.raises(InvalidParamsError) as info:
        await service.submit("echo", {"text": "x"}, priority=given)
    assert [d["loc"] for d in info.value.details] == [["priority"]]
    assert await stored_count(repository) == 0


async def test_delay_schedules_the_first_run_from_now(service: TaskService) -> None:
    task = await service.submit("echo", {"text": "x"}, delay_s=90)
    assert task.run_at == START + timedelta(seconds=90)


async def test_run_at_is_stored_in_utc(service: TaskService) -> None:
    later = datetime(2026, 3, 1, 20, 0, tzinfo=timezone(timedelta(hours=8)))
    task = await service.submit("echo", {"text": "x"}, run_at=later)
    assert task.run_at == START
    assert task.run_at.utcoffset() == timedelta(0)


async def test_run_at_and_delay_are_mutually_exclusive(
    service: TaskService, repository: MemoryTaskRepository
) -> None:
    with pytest.raises(InvalidParamsError) as info:
        await service.submit("echo", {"text": "x"}, run_at=START, delay_s=1)
    assert info.value.details[0]["loc"] == ["delay_s"]
    assert await stored_count(repository) == 0


@pytest.mark.parametrize(
    ("options", "loc"),
    [
        ({"run_at": datetime(2026, 3, 1, 12, 0)}, "run_at"),  # naive: whose noon?
        # Before year 1 once converted to UTC: refused, not an OverflowError.
        ({"run_at": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))}, "run_at"),
        ({"delay_s": -1}, "delay_s"),
        ({"delay_s": float("inf")}, "delay_s"),
        ({"delay_s": 1e300}, "delay_s"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1001}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": float("nan")}, "timeout_s"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "k" * 201}, "idempotency_key"),
        ({"created_by": ""}, "created_by"),
    ],
)
async def test_invalid_options_are_refused_and_nothing_is_stored(
    service: TaskService,
    repository: MemoryTaskRepository,
    notifier: RecordingNotifier,
    options: dict[str, Any],
    loc: str,
) -> None:
    with pytest.raises(InvalidParamsError) as info:
        await service.submit("echo", {"text": "x"}, **options)
    assert [d["loc"] for d in info.value.details] == [[loc]]
    assert await stored_count(repository) == 0
    assert notifier.submitted == []


async def test_invalid_params_report_every_problem_with_field_details(
    service: TaskService, repository: MemoryTaskRepository
) -> None:
    with pytest.raises(InvalidParamsError) as info:
        await service.submit("echo", {"text": "", "times": 0, "extra": 1}, priority="top")
    locs = sorted(tuple(d["loc"]) for d in info.value.details)
    assert locs == [("params", "extra"), ("params", "text"), ("params", "times"), ("priority",)]
    assert all({"loc", "msg", "type"} <= set(d) for d in info.value.details)
    assert await stored_count(repository) == 0


async def test_an_unknown_type_is_refused_and_nothing_is_stored(
    service: TaskService, repository: MemoryTaskRepository
) -> None:
    with pytest.raises(UnknownTaskTypeError) as info:
        await service.submit("nope", {})
    assert info.value.task_type == "nope"
    assert set(info.value.known) == {"echo", "plain"}
    assert await stored_count(repository) == 0


async def test_one_idempotency_key_yields_one_task(
    service: TaskService, repository: MemoryTaskRepository, notifier: RecordingNotifier
) -> None:
    first = await service.submit("echo", {"text": "a"}, idempotency_key="order-42")
    second = await service.submit("echo", {"text": "b"}, idempotency_key="order-42")

    assert second.id == first.id
    assert second.params == {"text": "a", "times": 1}
    assert await stored_count(repository) == 1
    assert notifier.submitted == [first.id]


async def test_a_full_queue_refuses_submits_until_a_pending_task_leaves(
    repository: MemoryTaskRepository, registry: ExecutorRegistry, clock: ManualClock
) -> None:
    service = TaskService(
        repository, registry, clock=clock, max_pending=2, queue_full_retry_after_s=7.5
    )
    first = await service.submit("echo", {"text": "1"})
    await service.submit("echo", {"text": "2"})

    with pytest.raises(QueueFullError) as info:
        await service.submit("echo", {"text": "3"})
    assert (info.value.pending, info.value.max_pending) == (2, 2)
    assert info.value.retry_after_s == 7.5
    assert await stored_count(repository) == 2

    await service.cancel(first.id)
    await service.submit("echo", {"text": "3"})
    counts = await service.counts()
    assert counts[TaskStatus.PENDING] == 2


def test_max_pending_must_be_positive(
    repository: MemoryTaskRepository, registry: ExecutorRegistry, clock: ManualClock
) -> None:
    with pytest.raises(ValueError, match="max_pending"):
        TaskService(repository, registry, clock=clock, max_pending=0)


async def test_a_failing_notifier_does_not_undo_a_stored_submit(
    repository: MemoryTaskRepository, registry: ExecutorRegistry, clock: ManualClock
) -> None:
    service = TaskService(repository, registry, clock=clock, notifier=BrokenNotifier())
    task = await service.submit("echo", {"text": "x"})
    assert (await repository.get(task.id)).status is TaskStatus.PENDING


async def test_the_notifier_is_told_of_each_new_task(
    repository: MemoryTaskRepository, registry: ExecutorRegistry, clock: ManualClock
) -> None:
    notifier = RecordingNotifier()
    service = TaskService(repository, registry, clock=clock, notifier=notifier)
    task = await service.submit("echo", {"text": "after"})
    assert notifier.submitted == [task.id]


# -- read ----------------------------------------------------------------------------------------


async def test_get_returns_the_task_or_raises_not_found(service: TaskService) -> None:
    task = await service.submit("echo", {"text": "x"})
    assert await service.get(task.id) == task
    with pytest.raises(TaskNotFoundError) as info:
        await service.get("missing")
    assert info.value.task_id == "missing"


async def test_list_pages_newest_first_with_the_total(
    service: TaskService, clock: ManualClock
) -> None:
    ids = []
    for n in range(5):
        ids.append((await service.submit("echo", {"text": str(n)})).id)
        clock.advance(1)
    await service.submit("plain", {})

    page = await service.list(TaskFilter(types=frozenset({"echo"})), offset=1, limit=2)
    assert page.total == 5
    assert [t.id for t in page.tasks] == [ids[3], ids[2]]


@pytest.mark.parametrize(("offset", "limit"), [(-1, 20), (0, 0), (0, 201)])
async def test_list_refuses_pages_out_of_bounds(
    service: TaskService, offset: int, limit: int
) -> None:
    with pytest.raises(InvalidParamsError):
        await service.list(TaskFilter(), offset=offset, limit=limit)


async def test_counts_cover_every_status(service: TaskService) -> None:
    await service.submit("echo", {"text": "x"})
    counts = await service.counts()
    assert set(counts) == set(TaskStatus)
    assert counts[TaskStatus.PENDING] == 1
    assert counts[TaskStatus.RUNNING] == 0


# -- operator actions -------------------------------------------------------------------------


async def test_cancelling_a_pending_task_cancels_it_at_once(
    service: TaskService, notifier: RecordingNotifier
) -> None:
    task = await service.submit("echo", {"text": "x"})
    cancelled = await service.cancel(task.id)
    assert cancelled.status is TaskStatus.CANCELLED
    assert (await service.get(task.id)).status is TaskStatus.CANCELLED
    assert notifier.cancelled == []


async def test_cancelling_a_running_task_asks_its_owner_and_the_local_dispatcher(
    service: TaskService,
    repository: MemoryTaskRepository,
    clock: ManualClock,
    notifier: RecordingNotifier,
) -> None:
    task = await service.submit("echo", {"text": "x"})
    await running(repository, clock)

    requested = await service.cancel(task.id)

    assert requested.status is TaskStatus.RUNNING
    assert requested.cancel_requested
    assert (await service.get(task.id)).cancel_requested
    assert notifier.cancelled == [task.id]


async def test_a_finished_task_cannot_be_cancelled(
    service: TaskService, repository: MemoryTaskRepository, clock: ManualClock
) -> None:
    await service.submit("echo", {"text": "x"})
    claimed = await running(repository, clock)
    await repository.complete(claimed.lease, now=clock.now(), result="x")

    with pytest.raises(IllegalTransitionError) as info:
        await service.cancel(claimed.id)
    assert info.value.status == TaskStatus.COMPLETED


async def test_cancel_of_an_unknown_task_raises_not_found(service: TaskService) -> None:
    with pytest.raises(TaskNotFoundError):
        await service.cancel("missing")


async def test_retrying_a_failed_task_makes_it_pending_again_and_wakes_the_dispatcher(
    service: TaskService,
    repository: MemoryTaskRepository,
    clock: ManualClock,
    notifier: RecordingNotifier,
) -> None:
    await service.submit("echo", {"text": "x"})
    claimed = await running(repository, clock)
    await repository.fail(claimed.lease, now=clock.now(), error=TaskError(type="Boom"))
    clock.advance(10)

    retried = await service.retry(claimed.id)

    assert retried.status is TaskStatus.PENDING
    assert retried.attempts == 0
    assert retried.error is None
    assert retried.run_at == clock.now()
    assert notifier.submitted == [claimed.id, claimed.id]


async def test_a_pending_task_cannot_be_retried(service: TaskService) -> None:
    task = await service.submit("echo", {"text": "x"})
    with pytest.raises(IllegalTransitionError) as info:
        await service.retry(task.id)
    assert info.value.status == TaskStatus.PENDING


async def test_delete_removes_a_finished_task_only(service: TaskService) -> None:
    task = await service.submit("echo", {"text": "x"})
    with pytest.raises(IllegalTransitionError):
        await service.delete(task.id)
    assert (await service.get(task.id)).status is TaskStatus.PENDING

    await service.cancel(task.id)
    await service.delete(task.id)
    with pytest.raises(TaskNotFoundError):
        await service.get(task.id)
    with pytest.raises(TaskNotFoundError):
        await service.delete(task.id)
