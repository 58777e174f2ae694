"""ScheduleService: what a schedule stores, what it refuses, and how its timetable moves.

A ManualClock drives every time; stores are the in-memory ones (the store contract is tested
on every backend in tests/repository/).
"""

from __future__ import annotations

import builtins
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from cam_tasks.domain import (
    InvalidParamsError,
    ManualClock,
    Schedule,
    ScheduleConflictError,
    ScheduleExistsError,
    ScheduleNotFoundError,
    TaskFilter,
    UnknownTaskTypeError,
)
from cam_tasks.executor import ExecutorRegistry, TaskContext
from cam_tasks.repository import MemoryScheduleRepository, MemoryTaskRepository
from cam_tasks.service import ScheduleService, TaskService

START = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)


class ReportParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1)
    days: int = Field(default=1, ge=1)


class ReportExecutor:
    type = "report"
    params_model: builtins.type[BaseModel] = ReportParams

    async def execute(self, params: ReportParams, ctx: TaskContext) -> Any:
        return params.kind


class CleanupParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    older_than_days: int = 30


class CleanupExecutor:
    type = "cleanup"
    params_model: builtins.type[BaseModel] = CleanupParams

    async def execute(self, params: CleanupParams, ctx: TaskContext) -> Any:
        return None


class CountingNotifier:
    def __init__(self) -> None:
        self.changes = 0

    def schedules_changed(self) -> None:
        self.changes += 1


class Env:
    def __init__(self) -> None:
        self.clock = ManualClock(START)
        self.tasks_repo = MemoryTaskRepository(clock=self.clock)
        self.store = MemoryScheduleRepository()
        self.tasks = TaskService(
            self.tasks_repo,
            ExecutorRegistry([ReportExecutor(), CleanupExecutor()]),
            clock=self.clock,
        )
        self.notifier = CountingNotifier()
        self.service = ScheduleService(self.store, self.tasks, notifier=self.notifier)

    async def create(self, name: str = "daily-report", **kw: Any) -> Schedule:
        options: dict[str, Any] = {
            "expression": "0 * * * *",
            "task_type": "report",
            "params": {"kind": "usage"},
        }
        options.update(kw)
        return await self.service.create(name, **options)


@pytest.fixture
def env() -> Env:
    return Env()


# -- create -------------------------------------------------------------------------------------


async def test_a_created_schedule_is_due_at_its_next_fire_time(env: Env) -> None:
    schedule = await env.create(priority="high", timezone="Asia/Shanghai")
    assert schedule.next_run_at == datetime(2026, 3, 1, 13, 0, tzinfo=UTC)
    assert (schedule.active, schedule.priority, schedule.timezone) == (True, 2, "Asia/Shanghai")
    assert (schedule.last_run_at, schedule.last_task_id, schedule.revision) == (None, None, 0)
    assert schedule.created_at == schedule.updated_at == START
    assert await env.service.get("daily-report") == schedule
    assert env.notifier.changes == 1


async def test_params_are_stored_as_the_executor_model_dumps_them(env: Env) -> None:
    schedule = await env.create(params={"kind": "usage"})
    assert schedule.params == {"kind": "usage", "days": 1}


async def test_a_paused_schedule_can_be_created_and_has_no_next_fire_time(env: Env) -> None:
    schedule = await env.create(active=False)
    assert (schedule.active, schedule.next_run_at) == (False, None)


async def test_every_problem_is_reported_at_once_and_nothing_is_stored(env: Env) -> None:
    with pytest.raises(InvalidParamsError) as caught:
        await env.service.create(
            "bad name!",
            expression="61 * * * *",
            task_type="report",
            params={"kind": "", "extra": 1},
            timezone="Mars/Olympus",
            priority="highest",
        )
    locs = [detail["loc"] for detail in caught.value.details]
    assert ["params", "kind"] in locs
    assert ["params", "extra"] in locs
    for field in ("name", "expression", "timezone", "priority"):
        assert [field] in locs
    assert (await env.service.list())[1] == 0
    assert env.notifier.changes == 0


async def test_an_unknown_task_type_is_refused(env: Env) -> None:
    with pytest.raises(UnknownTaskTypeError) as caught:
        await env.create(task_type="nope")
    assert set(caught.value.known) == {"report", "cleanup"}


async def test_names_are_unique(env: Env) -> None:
    await env.create()
    with pytest.raises(ScheduleExistsError):
        await env.create(expression="@daily")


@pytest.mark.parametrize(("priority", "stored"), [("low", 0), ("URGENT", 3), (2, 2), (0, 0)])
async def test_priorities_take_names_or_their_ints(env: Env, priority: Any, stored: int) -> None:
    assert (await env.create(priority=priority)).priority == stored


@pytest.mark.parametrize("priority", [4, -1, True, "critical", 1.5])
async def test_other_priorities_are_refused(env: Env, priority: Any) -> None:
    with pytest.raises(InvalidParamsError) as caught:
        await env.create(priority=priority)
    assert caught.value.details[0]["loc"] == ["priority"]


# -- read ---------------------------------------------------------------------------------------


async def test_list_pages_by_name_and_filters_by_active(env: Env) -> None:
    for name in ("c", "a", "b"):
        await env.create(name)
    await env.service.pause("b")
    page, total = await env.service.list(limit=2)
    assert ([s.name for s in page], total) == (["a", "b"], 3)
    page, total = await env.service.list(active=True)
    assert ([s.name for s in page], total) == (["a", "c"], 2)
    with pytest.raises(InvalidParamsError):
        await env.service.list(limit=0)
    with pytest.raises(InvalidParamsError):
        await env.service.list(offset=-1)


async def test_an_unknown_schedule_is_not_found(env: Env) -> None:
    for call in (
        env.service.get("nope"),
        env.service.update("nope", priority=1),
        env.service.delete("nope"),
        env.service.pause("nope"),
        env.service.resume("nope"),
        env.service.run_now("nope"),
    ):
        with pytest.raises(ScheduleNotFoundError):
            await call


# -- update -------------------------------------------------------------------------------------


async def test_a_new_expression_restarts_the_timetable_from_now(env: Env) -> None:
    await env.create()
    env.clock.advance(60)
    updated = await env.service.update("daily-report", expression="*/5 * * * *")
    assert updated.next_run_at == datetime(2026, 3, 1, 12, 5, tzinfo=UTC)
    assert (updated.revision, updated.updated_at) == (1, env.clock.now())


async def test_a_new_zone_restarts_the_timetable_in_that_zone(env: Env) -> None:
    await env.create(expression="0 9 * * *")
    updated = await env.service.update("daily-report", timezone="America/New_York")
    assert updated.next_run_at == datetime(2026, 3, 1, 14, 0, tzinfo=UTC)


async def test_other_changes_keep_the_timetable(env: Env) -> None:
    created = await env.create()
    env.clock.advance(3600 * 5)  # the stored next_run_at is now in the past: still due, kept
    updated = await env.service.update("daily-report", params={"kind": "cost"}, priority="urgent")
    assert updated.next_run_at == created.next_run_at
    assert (updated.params, updated.priority) == ({"kind": "cost", "days": 1}, 3)


async def test_a_new_type_checks_the_kept_params_against_its_own_model(env: Env) -> None:
    await env.create()
    with pytest.raises(InvalidParamsError) as caught:
        await env.service.update("daily-report", task_type="cleanup")
    assert caught.value.details[0]["loc"][0] == "params"
    changed = await env.service.update("daily-report", task_type="cleanup", params={})
    assert (changed.type, changed.params) == ("cleanup", {"older_than_days": 30})


async def test_an_invalid_update_changes_nothing(env: Env) -> None:
    created = await env.create()
    with pytest.raises(InvalidParamsError):
        await env.service.update("daily-report", expression="every hour")
    assert await env.service.get("daily-report") == created


async def test_an_update_that_changes_nothing_writes_nothing(env: Env) -> None:
    created = await env.create()
    env.clock.advance(10)
    same = await env.service.update("daily-report", expression=" 0  * * * * ", priority="normal")
    assert same == created
    assert env.notifier.changes == 1  # the create only


async def test_an_update_racing_another_change_is_applied_on_top_of_it(env: Env) -> None:
    await env.create()
    real_replace = env.store.replace
    raced = False

    async def replace_after_a_concurrent_change(schedule: Schedule, *, revision: int) -> Any:
        nonlocal raced
        if not raced:
            raced = True
            current = await env.store.get(schedule.name)
            await real_replace(current.model_copy(update={"priority": 3}), revision=revision)
        return await real_replace(schedule, revision=revision)

    env.store.replace = replace_after_a_concurrent_change  # type: ignore[method-assign]
    updated = await env.service.update("daily-report", params={"kind": "cost"})
    assert (updated.priority, updated.params["kind"], updated.revision) == (3, "cost", 2)


async def test_an_update_that_keeps_losing_races_gives_up_with_a_conflict(env: Env) -> None:
    await env.create()

    async def always_stale(schedule: Schedule, *, revision: int) -> None:
        return None

    env.store.replace = always_stale  # type: ignore[method-assign]
    with pytest.raises(ScheduleConflictError):
        await env.service.update("daily-report", priority=0)


# -- pause, resume, delete ----------------------------------------------------------------------


async def test_pause_clears_the_timetable_and_is_idempotent(env: Env) -> None:
    await env.create()
    paused = await env.service.pause("daily-report")
    assert (paused.active, paused.next_run_at) == (False, None)
    assert await env.service.pause("daily-report") == paused


async def test_resume_continues_from_the_next_fire_time_after_now(env: Env) -> None:
    await env.create()
    await env.service.pause("daily-report")
    env.clock.set(datetime(2026, 3, 1, 17, 20, tzinfo=UTC))  # 13:00..17:00 were missed
    resumed = await env.service.resume("daily-report")
    assert (resumed.active, resumed.next_run_at) == (True, datetime(2026, 3, 1, 18, tzinfo=UTC))
    assert await env.service.resume("daily-report") == resumed


async def test_delete_removes_the_schedule(env: Env) -> None:
    await env.create()
    await env.service.delete("daily-report")
    with pytest.raises(ScheduleNotFoundError):
        await env.service.get("daily-report")
    assert env.notifier.changes == 2


# -- run now ------------------------------------------------------------------------------------


async def test_run_now_fires_one_task_without_shifting_the_timetable(env: Env) -> None:
    created = await env.create(priority="high")
    env.clock.advance(5)
    task = await env.service.run_now("daily-report")
    assert (task.type, task.params, task.priority) == ("report", {"kind": "usage", "days": 1}, 2)
    assert task.created_by == "schedule:daily-report"
    assert task.run_at == env.clock.now()
    after = await env.service.get("daily-report")
    assert after.next_run_at == created.next_run_at
    assert (after.last_run_at, after.last_task_id) == (env.clock.now(), task.id)
    second = await env.service.run_now("daily-report")
    assert second.id != task.id  # each call fires a new task
    page = await env.tasks.list(TaskFilter(created_by="schedule:daily-report"))
    assert page.total == 2


async def test_run_now_works_on_a_paused_schedule_and_keeps_it_paused(env: Env) -> None:
    await env.create()
    await env.service.pause("daily-report")
    await env.service.run_now("daily-report")
    after = await env.service.get("daily-report")
    assert (after.active, after.next_run_at, after.last_task_id is not None) == (False, None, True)


# -- declared schedules -------------------------------------------------------------------------


async def test_ensure_creates_then_updates_to_the_declaration(env: Env) -> None:
    declared: dict[str, Any] = {"expression": "0 3 * * *", "task_type": "cleanup", "params": {}}
    created = await env.service.ensure("cleanup", **declared)
    assert created.next_run_at == datetime(2026, 3, 2, 3, tzinfo=UTC)
    assert await env.service.ensure("cleanup", **declared) == created  # nothing to change
    changed = await env.service.ensure("cleanup", **{**declared, "expression": "0 4 * * *"})
    assert changed.next_run_at == datetime(2026, 3, 2, 4, tzinfo=UTC)
    assert changed.revision == 1


async def test_ensure_leaves_an_operator_pause_alone_unless_told(env: Env) -> None:
    declared: dict[str, Any] = {"expression": "@daily", "task_type": "cleanup"}
    await env.service.ensure("cleanup", **declared)
    await env.service.pause("cleanup")
    assert not (await env.service.ensure("cleanup", **declared)).active
    assert (await env.service.ensure("cleanup", **declared, active=True)).active
    assert not (await env.service.ensure("other", **declared, active=False)).active


async def test_ensure_survives_a_concurrent_create(env: Env) -> None:
    declared: dict[str, Any] = {"expression": "@daily", "task_type": "cleanup", "params": {}}
    real_get = env.store.get
    first = True

    async def created_elsewhere_meanwhile(name: str) -> Schedule:
        nonlocal first
        if first:
            first = False
            await env.service.create(name, expression="@hourly", task_type="cleanup")
            raise ScheduleNotFoundError(name)  # what this caller saw before the other create
        return await real_get(name)

    env.store.get = created_elsewhere_meanwhile  # type: ignore[method-assign]
    ensured = await env.service.ensure("cleanup", **declared)
    assert ensured.expression == "@daily"
    assert ensured.next_run_at == datetime(2026, 3, 2, tzinfo=UTC)


async def test_a_notifier_failure_does_not_fail_the_change(env: Env) -> None:
    class Broken:
        def schedules_changed(self) -> None:
            raise RuntimeError("scheduler gone")

    env.service = ScheduleService(env.store, env.tasks, notifier=Broken())
    assert (await env.create()).name == "daily-report"
    assert env.service.clock.now() - START == timedelta(0)
