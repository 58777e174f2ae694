"""One contract for every schedule store: memory, Mongo on mongomock-motor (Motor-shaped), Mongo
over the wire (PyMongo async; skipped without MONGODB_URI).

Times are fixed values; nothing here sleeps or reads the wall clock.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cam_tasks.domain import Schedule, ScheduleExistsError, ScheduleNotFoundError
from cam_tasks.repository import SCHEDULE_INDEXES, ScheduleRepository
from tests.conftest import Backend

Repo = ScheduleRepository

T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def make(name: str = "nightly", *, next_run: float | None = 1, **fields: Any) -> Schedule:
    values: dict[str, Any] = {
        "name": name,
        "expression": "* * * * *",
        "type": "sync_assets",
        "params": {"provider": "aliyun", "regions": ["cn-shenzhen"]},
        "next_run_at": None if next_run is None else at(next_run),
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(fields)
    return Schedule(**values)


@pytest.fixture
async def repo(backend: Backend) -> Repo:
    store = backend.schedules()
    await store.initialize()
    return store


async def claim(repo: Repo, schedule: Schedule, *, next_run: float | None, now: float) -> Any:
    assert schedule.next_run_at is not None
    return await repo.claim_fire(
        schedule.name,
        revision=schedule.revision,
        fire_at=schedule.next_run_at,
        next_run_at=None if next_run is None else at(next_run),
        now=at(now),
    )


# -- lifecycle, insert, get, list, delete ------------------------------------------------------


async def test_initialize_and_close_are_idempotent(repo: Repo) -> None:
    await repo.initialize()
    await repo.close()
    await repo.close()


async def test_a_stored_schedule_reads_back_equal(repo: Repo) -> None:
    schedule = make(
        timezone="Europe/Berlin",
        priority=3,
        active=True,
        last_run_at=at(-1),
        last_task_id="t-1",
        last_error="boom",
        revision=4,
    )
    assert await repo.insert(schedule) == schedule
    assert await repo.get("nightly") == schedule


async def test_times_are_kept_to_the_millisecond_in_utc(repo: Repo) -> None:
    stored = await repo.insert(make(created_at=T0 + timedelta(microseconds=1_234_567)))
    assert stored.created_at == T0 + timedelta(seconds=1, milliseconds=234)
    assert (await repo.get("nightly")).created_at == stored.created_at
    assert stored.created_at.tzinfo is not None


async def test_names_are_unique(repo: Repo) -> None:
    await repo.insert(make())
    with pytest.raises(ScheduleExistsError) as caught:
        await repo.insert(make(expression="@daily"))
    assert caught.value.name == "nightly"
    assert (await repo.get("nightly")).expression == "* * * * *"


async def test_concurrent_inserts_of_one_name_store_exactly_one(repo: Repo) -> None:
    outcomes = await asyncio.gather(
        *(repo.insert(make(priority=p)) for p in range(4)), return_exceptions=True
    )
    stored = [o for o in outcomes if isinstance(o, Schedule)]
    assert len(stored) == 1
    assert all(isinstance(o, ScheduleExistsError) for o in outcomes if o not in stored)
    assert (await repo.list())[1] == 1


async def test_get_and_delete_of_an_unknown_name_raise_not_found(repo: Repo) -> None:
    with pytest.raises(ScheduleNotFoundError):
        await repo.get("nope")
    with pytest.raises(ScheduleNotFoundError):
        await repo.delete("nope")


async def test_delete_removes_the_schedule_and_frees_its_name(repo: Repo) -> None:
    await repo.insert(make())
    await repo.delete("nightly")
    with pytest.raises(ScheduleNotFoundError):
        await repo.get("nightly")
    assert await repo.insert(make()) == make()


async def test_list_orders_by_name_pages_and_filters_by_active(repo: Repo) -> None:
    for name, active in [("c", True), ("a", False), ("d", True), ("b", True)]:
        await repo.insert(make(name, active=active))
    everything, total = await repo.list()
    assert [s.name for s in everything] == ["a", "b", "c", "d"]
    assert total == 4
    page, total = await repo.list(offset=1, limit=2)
    assert ([s.name for s in page], total) == (["b", "c"], 4)
    running, total = await repo.list(active=True)
    assert ([s.name for s in running], total) == (["b", "c", "d"], 3)
    paused, total = await repo.list(active=False, limit=0)
    assert (paused, total) == ([], 1)
    with pytest.raises(ValueError, match="offset"):
        await repo.list(offset=-1)


# -- configuration writes ----------------------------------------------------------------------


async def test_replace_writes_the_configuration_and_bumps_the_revision(repo: Repo) -> None:
    stored = await repo.insert(make(last_task_id="t-1", last_run_at=at(-5)))
    changed = stored.model_copy(
        update={
            "expression": "@hourly",
            "timezone": "Asia/Shanghai",
            "params": {"provider": "aws"},
            "priority": 2,
            "active": False,
            "next_run_at": None,
            "updated_at": at(3),
            # runtime state in the argument is ignored: a replace never rewrites it
            "last_task_id": "forged",
            "firing_at": at(9),
        }
    )
    written = await repo.replace(changed, revision=0)
    assert written is not None
    assert written.revision == 1
    assert (written.expression, written.timezone, written.priority) == (
        "@hourly",
        "Asia/Shanghai",
        2,
    )
    assert (written.params, written.active, written.next_run_at) == (
        {"provider": "aws"},
        False,
        None,
    )
    assert written.updated_at == at(3)
    assert (written.last_task_id, written.last_run_at, written.firing_at) == ("t-1", at(-5), None)
    assert await repo.get("nightly") == written


async def test_replace_with_a_stale_revision_changes_nothing(repo: Repo) -> None:
    stored = await repo.insert(make())
    assert await repo.replace(stored.model_copy(update={"priority": 3}), revision=0) is not None
    assert await repo.replace(stored.model_copy(update={"priority": 0}), revision=0) is None
    assert (await repo.get("nightly")).priority == 3


async def test_replace_of_a_deleted_schedule_raises_not_found(repo: Repo) -> None:
    with pytest.raises(ScheduleNotFoundError):
        await repo.replace(make(), revision=0)


# -- the scheduler's queries -------------------------------------------------------------------


async def test_due_returns_active_schedules_due_by_now_earliest_first(repo: Repo) -> None:
    await repo.insert(make("late", next_run=2))
    await repo.insert(make("early", next_run=1))
    await repo.insert(make("future", next_run=10))
    await repo.insert(make("paused", next_run=0, active=False))
    await repo.insert(make("never", next_run=None))
    assert [s.name for s in await repo.due(now=at(2))] == ["early", "late"]
    assert [s.name for s in await repo.due(now=at(2), limit=1)] == ["early"]
    assert await repo.due(now=at(0)) == []


async def test_the_scheduler_queries_can_keep_to_some_task_types(repo: Repo) -> None:
    await repo.insert(make("sync", next_run=1))
    await repo.insert(make("report", next_run=2, type="report"))
    claimed = await claim(
        repo, await repo.insert(make("cleanup", next_run=0, type="cleanup")), next_run=9, now=0
    )
    assert claimed is not None
    assert [s.name for s in await repo.due(now=at(5), types={"report", "sync_assets"})] == [
        "sync",
        "report",
    ]
    assert [s.name for s in await repo.due(now=at(5), types={"report"})] == ["report"]
    assert await repo.due(now=at(5), types=set()) == []
    assert await repo.next_run_at(types={"report"}) == at(2)
    assert await repo.next_run_at(types={"nope"}) is None
    assert [s.name for s in await repo.firing(types={"cleanup"})] == ["cleanup"]
    assert await repo.firing(types={"report"}) == []
    with pytest.raises(TypeError):
        await repo.due(now=at(5), types="report")


async def test_next_run_at_is_the_earliest_of_active_schedules(repo: Repo) -> None:
    assert await repo.next_run_at() is None
    await repo.insert(make("never", next_run=None))
    await repo.insert(make("paused", next_run=1, active=False))
    assert await repo.next_run_at() is None
    await repo.insert(make("b", next_run=7))
    await repo.insert(make("a", next_run=5))
    assert await repo.next_run_at() == at(5)


# -- firing ------------------------------------------------------------------------------------


async def test_a_claim_advances_the_schedule_and_marks_the_fire_pending(repo: Repo) -> None:
    stored = await repo.insert(make())
    claimed = await claim(repo, stored, next_run=2, now=1.5)
    assert claimed is not None
    assert (claimed.next_run_at, claimed.firing_at, claimed.last_run_at) == (at(2), at(1), at(1.5))
    assert claimed.revision == stored.revision
    assert [s.name for s in await repo.firing()] == ["nightly"]
    assert await repo.get("nightly") == claimed


async def test_of_concurrent_claims_of_one_slot_exactly_one_wins(repo: Repo) -> None:
    stored = await repo.insert(make())
    outcomes = await asyncio.gather(*(claim(repo, stored, next_run=2, now=1) for _ in range(8)))
    assert sum(o is not None for o in outcomes) == 1


async def test_a_slot_cannot_be_claimed_twice(repo: Repo) -> None:
    stored = await repo.insert(make())
    assert await claim(repo, stored, next_run=2, now=1) is not None
    await repo.finish_fire("nightly", fire_at=at(1), task_id="t-1", error=None)
    assert await claim(repo, stored, next_run=2, now=1) is None


async def test_no_claim_while_a_fire_is_pending(repo: Repo) -> None:
    stored = await repo.insert(make())
    claimed = await claim(repo, stored, next_run=2, now=1)
    assert claimed is not None
    # The next slot is due, but the pending fire of the previous one must be recorded first.
    assert await claim(repo, claimed, next_run=3, now=2) is None
    assert await repo.finish_fire("nightly", fire_at=at(1), task_id="t-1", error=None)
    assert await claim(repo, claimed, next_run=3, now=2) is not None


async def test_no_claim_from_a_stale_revision_or_of_a_paused_schedule(repo: Repo) -> None:
    stored = await repo.insert(make())
    bumped = await repo.replace(stored.model_copy(update={"priority": 2}), revision=0)
    assert bumped is not None
    assert await claim(repo, stored, next_run=2, now=1) is None  # read before the change
    paused = await repo.replace(bumped.model_copy(update={"active": False}), revision=1)
    assert paused is not None
    assert await claim(repo, paused, next_run=2, now=1) is None
    assert (
        await repo.claim_fire("gone", revision=0, fire_at=at(1), next_run_at=None, now=at(1))
        is None
    )


async def test_finish_fire_records_the_task_once(repo: Repo) -> None:
    stored = await repo.insert(make(last_error="old failure"))
    await claim(repo, stored, next_run=2, now=1)
    assert await repo.finish_fire("nightly", fire_at=at(1), task_id="t-1", error=None)
    assert not await repo.finish_fire("nightly", fire_at=at(1), task_id="t-2", error=None)
    done = await repo.get("nightly")
    assert (done.firing_at, done.last_task_id, done.last_error) == (None, "t-1", None)
    assert await repo.firing() == []
    assert not await repo.finish_fire("gone", fire_at=at(1), task_id="t", error=None)


async def test_finish_fire_can_record_a_failure_without_a_task(repo: Repo) -> None:
    stored = await repo.insert(make(last_task_id="t-0"))
    await claim(repo, stored, next_run=2, now=1)
    assert await repo.finish_fire("nightly", fire_at=at(1), task_id=None, error="unknown type")
    done = await repo.get("nightly")
    assert (done.firing_at, done.last_task_id, done.last_error) == (None, None, "unknown type")


async def test_skip_fire_moves_on_without_a_pending_fire(repo: Repo) -> None:
    stored = await repo.insert(make(last_run_at=at(-10)))
    assert await repo.skip_fire("nightly", revision=0, fire_at=at(1), next_run_at=at(5))
    assert not await repo.skip_fire("nightly", revision=0, fire_at=at(1), next_run_at=at(6))
    skipped = await repo.get("nightly")
    assert (skipped.next_run_at, skipped.firing_at, skipped.last_run_at) == (at(5), None, at(-10))
    assert stored.revision == skipped.revision


async def test_record_run_keeps_the_timetable(repo: Repo) -> None:
    await repo.insert(make(last_error="old"))
    ran = await repo.record_run("nightly", now=at(0.5), task_id="t-9")
    assert (ran.last_run_at, ran.last_task_id, ran.last_error) == (at(0.5), "t-9", None)
    assert ran.next_run_at == at(1)
    with pytest.raises(ScheduleNotFoundError):
        await repo.record_run("gone", now=at(0), task_id="t")


# -- Mongo only --------------------------------------------------------------------------------


async def test_the_mongo_store_creates_its_indexes(backend: Backend, repo: Repo) -> None:
    database = backend.database
    if database is None:
        pytest.skip("memory has no indexes to create")
    info = await database["schedules"].index_information()
    for model in SCHEDULE_INDEXES:
        assert model.document["name"] in info
    assert info["name"].get("unique") is True
    await repo.initialize()  # idempotent
