"""The scheduler fires every fire time of a schedule exactly once, cluster-wide.

Time is a ManualClock advanced by the tests (the one exception says so); a pass is run by hand
with ``run_due()`` where the order of events matters, and by the scheduler's own loop elsewhere.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from cam_tasks.domain import (
    DatabaseUnavailableError,
    ManualClock,
    Schedule,
    SystemClock,
    Task,
    TaskFilter,
    UnknownTaskTypeError,
    fire_key,
)
from cam_tasks.executor import ExecutorRegistry, TaskContext
from cam_tasks.queue import Scheduler
from cam_tasks.repository import (
    MemoryScheduleRepository,
    MemoryTaskRepository,
    MongoScheduleRepository,
    MongoTaskRepository,
    ScheduleRepository,
    TaskRepository,
)
from cam_tasks.service import ScheduleService, TaskService
from tests.conftest import WIRE_URI, Backend
from tests.support.waiting import eventually

START = datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC)
NAME = "every-minute"
CREATOR = f"schedule:{NAME}"


def minute(n: int) -> datetime:
    """The n-th whole minute after START's minute (12:00 + n)."""
    return datetime(2030, 1, 1, 12, n, tzinfo=UTC)


class PingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str = "all"


class PingExecutor:
    type = "ping"
    params_model: builtins.type[BaseModel] = PingParams

    async def execute(self, params: PingParams, ctx: TaskContext) -> Any:
        return None


class OtherExecutor:
    type = "other"
    params_model: builtins.type[BaseModel] = PingParams

    async def execute(self, params: PingParams, ctx: TaskContext) -> Any:
        return None


@dataclass
class Instance:
    """What one process of the cluster has: its own stores (on a shared database), services and
    scheduler."""

    tasks_repo: TaskRepository
    store: ScheduleRepository
    tasks: TaskService
    schedules: ScheduleService
    scheduler: Scheduler


def make_instance(
    tasks_repo: TaskRepository,
    store: ScheduleRepository,
    clock: Any,
    *,
    submit: Any = None,
    **options: Any,
) -> Instance:
    tasks = TaskService(tasks_repo, ExecutorRegistry([PingExecutor()]), clock=clock)
    scheduler = Scheduler(store, submit or tasks.submit, clock=clock, **options)
    schedules = ScheduleService(store, tasks, clock=clock, notifier=scheduler)
    return Instance(tasks_repo, store, tasks, schedules, scheduler)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def one(clock: ManualClock) -> Instance:
    return make_instance(MemoryTaskRepository(clock=clock), MemoryScheduleRepository(), clock)


async def fired(instance: Instance) -> list[Task]:
    page = await instance.tasks.list(TaskFilter(created_by=CREATOR), limit=200)
    return sorted(page.tasks, key=lambda t: t.idempotency_key or "")


def _has_length(n: int) -> Callable[[list[Task]], bool]:
    return lambda tasks: len(tasks) == n


async def create(instance: Instance, expression: str = "* * * * *", **kw: Any) -> Schedule:
    return await instance.schedules.create(
        NAME, expression=expression, task_type="ping", params={"target": "db"}, **kw
    )


# -- one scheduler, pass by pass ---------------------------------------------------------------


async def test_a_due_schedule_fires_one_task_and_moves_to_its_next_fire_time(
    one: Instance, clock: ManualClock
) -> None:
    await create(one, priority="high")
    assert await one.scheduler.run_due() == 0  # 12:00:30: not due before 12:01
    clock.set(minute(1))
    assert await one.scheduler.run_due() == 1
    assert await one.scheduler.run_due() == 0  # the slot is gone
    [task] = await fired(one)
    assert (task.type, task.params, task.priority) == ("ping", {"target": "db"}, 2)
    assert task.idempotency_key == fire_key(NAME, minute(1))
    schedule = await one.schedules.get(NAME)
    assert schedule.next_run_at == minute(2)
    assert (schedule.last_run_at, schedule.last_task_id) == (minute(1), task.id)
    assert (schedule.firing_at, schedule.last_error) == (None, None)


async def test_every_fire_time_fires_once_in_order(one: Instance, clock: ManualClock) -> None:
    await create(one)
    for n in range(1, 6):
        clock.set(minute(n) + timedelta(seconds=1))
        assert await one.scheduler.run_due() == 1
    keys = [t.idempotency_key for t in await fired(one)]
    assert keys == [fire_key(NAME, minute(n)) for n in range(1, 6)]


async def test_missed_fire_times_fire_once_then_continue_after_now(
    one: Instance, clock: ManualClock
) -> None:
    await create(one)
    clock.set(minute(10) + timedelta(seconds=20))  # 12:01 .. 12:10 were all missed
    assert await one.scheduler.run_due() == 1
    [task] = await fired(one)
    assert task.idempotency_key == fire_key(NAME, minute(1))  # the first missed slot
    assert (await one.schedules.get(NAME)).next_run_at == minute(11)


async def test_with_misfire_skip_a_late_slot_is_skipped_and_an_on_time_one_fires(
    clock: ManualClock,
) -> None:
    skip = make_instance(
        MemoryTaskRepository(clock=clock),
        MemoryScheduleRepository(),
        clock,
        misfire="skip",
        misfire_grace_s=30,
    )
    await create(skip)
    clock.set(minute(10) + timedelta(seconds=20))
    assert await skip.scheduler.run_due() == 0
    schedule = await skip.schedules.get(NAME)
    assert (schedule.next_run_at, schedule.last_run_at) == (minute(11), None)
    clock.set(minute(11) + timedelta(seconds=29))  # within the grace: fires
    assert await skip.scheduler.run_due() == 1
    assert [t.idempotency_key for t in await fired(skip)] == [fire_key(NAME, minute(11))]


async def test_pause_stops_firing_and_resume_continues_from_the_next_due_time(
    one: Instance, clock: ManualClock
) -> None:
    await create(one)
    clock.set(minute(1))
    assert await one.scheduler.run_due() == 1
    await one.schedules.pause(NAME)
    for n in range(2, 6):
        clock.set(minute(n))
        assert await one.scheduler.run_due() == 0
    clock.set(minute(5) + timedelta(seconds=10))
    resumed = await one.schedules.resume(NAME)
    assert resumed.next_run_at == minute(6)  # 12:02..12:05 are not fired late
    assert await one.scheduler.run_due() == 0
    clock.set(minute(6))
    assert await one.scheduler.run_due() == 1
    keys = [t.idempotency_key for t in await fired(one)]
    assert keys == [fire_key(NAME, minute(1)), fire_key(NAME, minute(6))]


async def test_run_now_fires_without_shifting_the_timetable(
    one: Instance, clock: ManualClock
) -> None:
    await create(one)
    now_task = await one.schedules.run_now(NAME)
    assert (await one.schedules.get(NAME)).next_run_at == minute(1)
    clock.set(minute(1))
    assert await one.scheduler.run_due() == 1  # the 12:01 slot still fires
    tasks = await fired(one)
    assert len(tasks) == 2
    assert now_task.id in {t.id for t in tasks}


async def test_an_instance_without_the_executor_leaves_the_schedule_to_one_that_has_it(
    clock: ManualClock,
) -> None:
    tasks_repo, store = MemoryTaskRepository(clock=clock), MemoryScheduleRepository()
    able = make_instance(tasks_repo, store, clock)
    unable = make_instance(tasks_repo, store, clock, registry=ExecutorRegistry([OtherExecutor()]))
    await create(able)
    clock.set(minute(1))
    assert await unable.scheduler.run_due() == 0
    untouched = await able.schedules.get(NAME)
    assert (untouched.next_run_at, untouched.last_error) == (minute(1), None)
    assert await able.scheduler.run_due() == 1


# -- crashes and failures ----------------------------------------------------------------------


async def test_a_fire_claimed_by_a_process_that_died_before_submitting_is_finished(
    one: Instance, clock: ManualClock
) -> None:
    schedule = await create(one)
    clock.set(minute(1))
    # A process claims the slot, then dies: no task, the fire is left pending.
    await one.store.claim_fire(
        NAME, revision=schedule.revision, fire_at=minute(1), next_run_at=minute(2), now=minute(1)
    )
    assert await fired(one) == []
    assert await one.scheduler.run_due() == 1
    [task] = await fired(one)
    assert task.idempotency_key == fire_key(NAME, minute(1))
    after = await one.schedules.get(NAME)
    assert (after.firing_at, after.last_task_id, after.next_run_at) == (None, task.id, minute(2))


async def test_a_fire_that_died_after_submitting_is_recorded_without_a_second_task(
    one: Instance, clock: ManualClock
) -> None:
    schedule = await create(one)
    clock.set(minute(1))
    await one.store.claim_fire(
        NAME, revision=schedule.revision, fire_at=minute(1), next_run_at=minute(2), now=minute(1)
    )
    # The task was submitted, then the process died before recording it on the schedule.
    submitted = await one.tasks.submit(
        "ping", {"target": "db"}, created_by=CREATOR, idempotency_key=fire_key(NAME, minute(1))
    )
    await one.scheduler.run_due()
    assert [t.id for t in await fired(one)] == [submitted.id]
    assert (await one.schedules.get(NAME)).last_task_id == submitted.id


async def test_a_passing_submit_failure_leaves_the_fire_pending_until_a_later_pass(
    clock: ManualClock,
) -> None:
    failures = [RuntimeError("queue hiccup")]
    tasks_repo = MemoryTaskRepository(clock=clock)
    real = TaskService(tasks_repo, ExecutorRegistry([PingExecutor()]), clock=clock)

    async def flaky_submit(task_type: str, params: Mapping[str, Any], **kw: Any) -> Task:
        if failures:
            raise failures.pop()
        return await real.submit(task_type, params, **kw)

    flaky = make_instance(tasks_repo, MemoryScheduleRepository(), clock, submit=flaky_submit)
    await create(flaky)
    clock.set(minute(1))
    assert await flaky.scheduler.run_due() == 0
    pending = await flaky.schedules.get(NAME)
    assert (pending.firing_at, pending.next_run_at) == (minute(1), minute(2))
    clock.set(minute(2))  # the next slot is due too, but the pending fire comes first
    assert await flaky.scheduler.run_due() == 2
    keys = [t.idempotency_key for t in await fired(flaky)]
    assert keys == [fire_key(NAME, minute(1)), fire_key(NAME, minute(2))]


async def test_a_submit_that_can_never_succeed_is_recorded_as_a_failed_fire(
    clock: ManualClock,
) -> None:
    async def executor_gone(task_type: str, params: Mapping[str, Any], **kw: Any) -> Task:
        raise UnknownTaskTypeError(task_type, ["other"])

    broken = make_instance(
        MemoryTaskRepository(clock=clock), MemoryScheduleRepository(), clock, submit=executor_gone
    )
    await create(broken)
    clock.set(minute(1))
    assert await broken.scheduler.run_due() == 0
    schedule = await broken.schedules.get(NAME)
    assert (schedule.firing_at, schedule.last_task_id) == (None, None)
    assert schedule.last_error is not None
    assert "UnknownTaskTypeError" in schedule.last_error
    assert schedule.next_run_at == minute(2)  # it keeps its timetable


async def test_an_unreachable_database_aborts_the_pass_and_loses_nothing(
    one: Instance, clock: ManualClock
) -> None:
    await create(one)
    clock.set(minute(1))
    real_due = one.store.due

    async def unreachable(**kw: Any) -> list[Schedule]:
        raise DatabaseUnavailableError("down")

    one.store.due = unreachable  # type: ignore[method-assign]
    with pytest.raises(DatabaseUnavailableError):
        await one.scheduler.run_due()
    one.store.due = real_due  # type: ignore[method-assign]
    assert await one.scheduler.run_due() == 1


# -- the loop ----------------------------------------------------------------------------------


async def test_start_and_close_are_idempotent_and_close_may_run_concurrently(
    one: Instance, clock: ManualClock
) -> None:
    await one.scheduler.start()
    await one.scheduler.start()
    assert one.scheduler.running
    await asyncio.gather(one.scheduler.close(), one.scheduler.close())
    await one.scheduler.close()
    assert not one.scheduler.running
    await one.scheduler.start()  # closed for good
    assert not one.scheduler.running
    never_started = make_instance(MemoryTaskRepository(), MemoryScheduleRepository(), clock)
    await never_started.scheduler.close()
    assert not never_started.scheduler.running


async def test_the_loop_fires_when_woken_after_the_clock_moved(
    one: Instance, clock: ManualClock
) -> None:
    await create(one)
    async with one.scheduler:
        for n in (1, 2, 3):
            clock.set(minute(n))
            one.scheduler.schedules_changed()
            await eventually(lambda: fired(one), _has_length(n))
    keys = [t.idempotency_key for t in await fired(one)]
    assert keys == [fire_key(NAME, minute(n)) for n in (1, 2, 3)]


async def test_the_loop_sleeps_until_the_earliest_fire_time_not_the_poll_interval() -> None:
    # The real clock, once: with a 60 s poll interval, only the timer set for the schedule's own
    # next_run_at can fire it within the test's deadline.
    clock = SystemClock()
    instance = make_instance(
        MemoryTaskRepository(), MemoryScheduleRepository(), clock, poll_interval_s=60
    )
    now = clock.now()
    await instance.store.insert(
        Schedule(
            name=NAME,
            expression="0 0 1 1 *",
            type="ping",
            next_run_at=now + timedelta(milliseconds=300),
            created_at=now,
            updated_at=now,
        )
    )
    async with instance.scheduler:
        [task] = await eventually(lambda: fired(instance), lambda tasks: len(tasks) == 1)
    assert task.created_at >= now + timedelta(milliseconds=300)


# -- two schedulers on one database ------------------------------------------------------------


@pytest.fixture
async def cluster(backend: Backend, clock: ManualClock) -> AsyncIterator[tuple[Instance, Instance]]:
    """Two instances sharing one database (the memory variant shares the store objects)."""
    options = {"poll_interval_s": 0.02}
    kind, database = backend.name, backend.database
    if kind == "memory":
        tasks_repo, store = MemoryTaskRepository(clock=clock), MemoryScheduleRepository()
        yield (
            make_instance(tasks_repo, store, clock, **options),
            make_instance(tasks_repo, store, clock, **options),
        )
        return
    databases = [database]
    second_client: Any = None
    if kind == "wire":
        # The second instance talks to the server over a connection of its own.
        from pymongo import AsyncMongoClient

        second_client = AsyncMongoClient(WIRE_URI, tz_aware=True)
        databases.append(second_client[database.name])
    else:
        databases.append(database)
    instances = []
    for db in databases:
        mongo_tasks, mongo_schedules = MongoTaskRepository(db), MongoScheduleRepository(db)
        await mongo_tasks.initialize()
        await mongo_schedules.initialize()
        instances.append(make_instance(mongo_tasks, mongo_schedules, clock, **options))
    yield instances[0], instances[1]
    if second_client is not None:
        await second_client.close()


async def test_two_schedulers_racing_over_several_fire_times_fire_each_once(
    cluster: tuple[Instance, Instance], clock: ManualClock
) -> None:
    a, b = cluster
    await create(a)
    for n in range(1, 7):
        clock.set(minute(n))
        results = await asyncio.gather(*(s.scheduler.run_due() for s in (a, b, a, b)))
        assert sum(results) == 1
    for instance in (a, b):
        keys = [t.idempotency_key for t in await fired(instance)]
        assert keys == [fire_key(NAME, minute(n)) for n in range(1, 7)]


async def test_two_running_schedulers_fire_each_fire_time_once(
    cluster: tuple[Instance, Instance], clock: ManualClock
) -> None:
    a, b = cluster
    await create(b)
    slots = range(1, 6)

    def fired_slot(n: int) -> Callable[[Schedule], bool]:
        def check(schedule: Schedule) -> bool:
            return schedule.next_run_at == minute(n + 1) and schedule.last_task_id is not None

        return check

    async with a.scheduler, b.scheduler:
        for n in slots:
            clock.set(minute(n))
            a.scheduler.schedules_changed()
            b.scheduler.schedules_changed()
            await eventually(lambda: a.schedules.get(NAME), fired_slot(n))
    # Both loops are closed: every pass either instance made is over.
    tasks = await fired(a)
    assert [t.idempotency_key for t in tasks] == [fire_key(NAME, minute(n)) for n in slots]
    assert len({t.id for t in tasks}) == len(slots)
