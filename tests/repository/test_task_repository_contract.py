"""One contract for every task repository: memory, Mongo on mongomock-motor (Motor-shaped),
Mongo over the wire (PyMongo async; skipped without MONGODB_URI).

Times come from a ManualClock; nothing here sleeps or depends on the wall clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cam_tasks.domain import (
    ActiveTaskExistsError,
    AttemptRecord,
    IllegalTransitionError,
    Lease,
    ManualClock,
    Progress,
    Task,
    TaskError,
    TaskFilter,
    TaskLostError,
    TaskNotFoundError,
    TaskStatus,
    new_task,
)
from cam_tasks.repository import Completion, TaskRepository
from tests.conftest import Backend

Repo = TaskRepository
MakeRepo = Callable[..., Awaitable[Repo]]

# Far in the future on purpose: TTL indexes delete by the wall clock (a server's TTL monitor
# within a minute, mongomock on every read), so a finished task with retention set would vanish
# mid-test if its expire_at lay in the past.
T0 = datetime(2100, 1, 1, 12, 0, tzinfo=UTC)
BOOM = TaskError(type="RuntimeError", message="boom")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make(
    task_id: str | None = None,
    *,
    task_type: str = "sync",
    created: float = 0,
    run_at: float | None = None,
    **fields: Any,
) -> Task:
    return new_task(
        task_type=task_type,
        params={"region": "cn-shenzhen", "nested": {"ids": [1, 2]}},
        now=at(created),
        run_at=None if run_at is None else at(run_at),
        task_id=task_id,
        **fields,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def make_repo(backend: Backend, clock: ManualClock) -> MakeRepo:
    """Build and initialize a repository on this test's backend (one database per test)."""

    async def build(*, retention_s: float | None = None) -> Repo:
        repo = backend.tasks(retention_s=retention_s, clock=clock)
        await repo.initialize()
        return repo

    return build


@pytest.fixture
async def repo(make_repo: MakeRepo) -> Repo:
    return await make_repo()


@pytest.fixture
def is_wire(backend: Backend) -> bool:
    return backend.name == "wire"


async def running(repo: Repo, task: Task, *, owner: str = "w1", lease_s: float = 30) -> Task:
    """Insert ``task`` and claim it (it must be the only due task of its type)."""
    await repo.insert(task)
    claimed = await repo.claim(types=[task.type], owner=owner, now=task.run_at, lease_s=lease_s)
    assert claimed is not None
    assert claimed.id == task.id
    return claimed


# -- lifecycle --------------------------------------------------------------------------------


async def test_initialize_close_and_ping_are_idempotent(repo: Repo) -> None:
    await repo.initialize()
    await repo.ping()
    await repo.close()
    await repo.close()


# -- insert and get ---------------------------------------------------------------------------


async def test_a_stored_task_reads_back_equal(repo: Repo) -> None:
    task = make(priority=3, timeout_s=12.5, created_by="alice", project_id="p1", max_retries=5)
    assert await repo.insert(task) == task
    assert await repo.get(task.id) == task


async def test_every_field_survives_the_round_trip(repo: Repo) -> None:
    record = AttemptRecord(
        attempt=1, owner="w", started_at=at(1), ended_at=at(2), outcome="retry", error=BOOM
    )
    task = make().model_copy(
        update={
            "result": {"counts": [1, 2]},
            "error": BOOM,
            "progress": 42.5,
            "message": "half way",
            "step": 3,
            "total_steps": 7,
            "step_name": "内容生成",
            "attempts": 1,
            "idempotency_key": "key-1",
            "history": (record,),
            "cancel_requested": True,
        }
    )
    await repo.insert(task)
    stored = await repo.get(task.id)
    assert stored == task
    assert stored.run_at.tzinfo is not None
    assert stored.history[0].started_at.utcoffset() == timedelta(0)


async def test_times_are_kept_to_the_millisecond_on_every_backend(repo: Repo) -> None:
    task = make(created=0.001_999)
    stored = await repo.insert(task)
    assert stored.created_at == at(0.001)
    assert (await repo.get(task.id)).created_at == at(0.001)


async def test_get_of_an_unknown_task_raises_not_found(repo: Repo) -> None:
    with pytest.raises(TaskNotFoundError) as info:
        await repo.get("nope")
    assert info.value.task_id == "nope"


async def test_inserting_an_existing_id_returns_the_stored_task(repo: Repo) -> None:
    first = await repo.insert(make("t1", created_by="alice"))
    again = await repo.insert(make("t1", created_by="bob"))
    assert again == first
    assert (await repo.list(TaskFilter(), offset=0, limit=10)).total == 1


async def test_an_idempotency_key_yields_one_task(repo: Repo) -> None:
    first = await repo.insert(make(idempotency_key="k"))
    again = await repo.insert(make(idempotency_key="k"))
    other = await repo.insert(make(idempotency_key="other"))
    assert again == first
    assert other.id != first.id
    # Tasks without a key never collide with each other.
    for _ in range(3):
        await repo.insert(make())
    assert (await repo.list(TaskFilter(), offset=0, limit=10)).total == 5


async def test_concurrent_inserts_with_one_key_yield_one_task(repo: Repo) -> None:
    inserted = await asyncio.gather(*(repo.insert(make(idempotency_key="once")) for _ in range(8)))
    assert len({task.id for task in inserted}) == 1
    assert (await repo.list(TaskFilter(), offset=0, limit=10)).total == 1


# -- claim ------------------------------------------------------------------------------------


async def test_claim_takes_the_highest_priority_then_earliest_run_at_created_at_and_id(
    repo: Repo,
) -> None:
    await repo.insert(make("low", priority=0, run_at=0))
    await repo.insert(make("late", priority=2, run_at=5))
    await repo.insert(make("b", priority=2, run_at=1, created=1))
    await repo.insert(make("a", priority=2, run_at=1, created=1))
    await repo.insert(make("old", priority=2, run_at=1, created=0))
    await repo.insert(make("urgent-later", priority=3, run_at=3))
    order = []
    while (task := await repo.claim(types=["sync"], owner="w", now=at(10), lease_s=30)) is not None:
        order.append(task.id)
    assert order == ["urgent-later", "old", "a", "b", "late", "low"]


async def test_claim_skips_tasks_that_are_not_due(repo: Repo) -> None:
    await repo.insert(make("future", priority=3, run_at=60))
    await repo.insert(make("due", priority=0, run_at=0))
    first = await repo.claim(types=["sync"], owner="w", now=at(59.999), lease_s=30)
    assert first is not None
    assert first.id == "due"
    assert await repo.claim(types=["sync"], owner="w", now=at(59.999), lease_s=30) is None
    exactly_due = await repo.claim(types=["sync"], owner="w", now=at(60), lease_s=30)
    assert exactly_due is not None
    assert exactly_due.id == "future"


async def test_claim_takes_only_the_requested_types(repo: Repo) -> None:
    await repo.insert(make("s", task_type="sync", priority=0))
    await repo.insert(make("d", task_type="discover", priority=3))
    await repo.insert(make("x", task_type="other", priority=3))
    assert await repo.claim(types=[], owner="w", now=at(1), lease_s=30) is None
    got = await repo.claim(types=["sync", "discover"], owner="w", now=at(1), lease_s=30)
    assert got is not None
    assert got.id == "d"
    got = await repo.claim(types={"sync", "discover"}, owner="w", now=at(1), lease_s=30)
    assert got is not None
    assert got.id == "s"
    assert await repo.claim(types=["sync", "discover"], owner="w", now=at(1), lease_s=30) is None


async def test_claim_starts_a_fresh_attempt(repo: Repo) -> None:
    task = await running(repo, make(), owner="w1", lease_s=30)
    await repo.heartbeat(
        task.lease, now=at(5), lease_s=30, progress=Progress(percent=50, message="m", step=1)
    )
    await repo.retry_later(task.lease, now=at(7), run_at=at(8), error=BOOM)

    again = await repo.claim(types=["sync"], owner="w2", now=at(9), lease_s=10)
    assert again is not None
    assert again.status is TaskStatus.RUNNING
    assert (again.owner, again.attempts) == ("w2", 2)
    assert (again.started_at, again.lease_until) == (at(9), at(19))
    assert (again.progress, again.message, again.step, again.total_steps) == (0, "", None, None)
    assert again == await repo.get(task.id)

    # No pending task carries a cancel flag any more (handing a flagged task back cancels it),
    # but one stored with it (by an older version) must not stop its next attempt.
    await repo.insert(make(task_type="old").model_copy(update={"cancel_requested": True}))
    flagged = await repo.claim(types=["old"], owner="w2", now=at(9), lease_s=10)
    assert flagged is not None
    assert flagged.cancel_requested is False


async def test_types_must_be_a_collection_not_a_string(repo: Repo) -> None:
    await repo.insert(make(task_type="s"))
    with pytest.raises(TypeError):
        await repo.claim(types="sync", owner="w", now=at(1), lease_s=30)
    with pytest.raises(TypeError):
        await repo.next_run_at(types="sync")


async def test_claim_returns_none_when_nothing_is_pending(repo: Repo) -> None:
    assert await repo.claim(types=["sync"], owner="w", now=at(0), lease_s=30) is None


async def test_concurrent_claims_never_return_the_same_task(repo: Repo) -> None:
    for i in range(10):
        await repo.insert(make(f"t{i}", priority=i % 3))
    claims = await asyncio.gather(
        *(repo.claim(types=["sync"], owner=f"w{i}", now=at(1), lease_s=30) for i in range(20))
    )
    won = [task for task in claims if task is not None]
    assert len(won) == 10
    assert len({task.id for task in won}) == 10
    for task in won:
        assert (await repo.get(task.id)).owner == task.owner


async def test_claim_many_takes_what_claims_one_after_another_would(repo: Repo) -> None:
    await repo.insert(make("low", priority=0, run_at=0))
    await repo.insert(make("late", priority=2, run_at=5))
    await repo.insert(make("b", priority=2, run_at=1, created=1))
    await repo.insert(make("a", priority=2, run_at=1, created=1))
    await repo.insert(make("old", priority=2, run_at=1, created=0))
    await repo.insert(make("urgent-later", priority=3, run_at=3))
    await repo.insert(make("future", priority=3, run_at=60))
    await repo.insert(make("elsewhere", task_type="other", priority=3))

    first = await repo.claim_many(types=["sync"], owner="w", now=at(10), lease_s=30, limit=4)
    assert [task.id for task in first] == ["urgent-later", "old", "a", "b"]
    for task in first:  # each as a claim leaves it, and as stored
        assert task.status is TaskStatus.RUNNING
        assert (task.owner, task.attempts, task.started_at) == ("w", 1, at(10))
        assert task.lease_until == at(40)
        assert task == await repo.get(task.id)
    rest = await repo.claim_many(types=["sync"], owner="w", now=at(10), lease_s=30, limit=10)
    assert [task.id for task in rest] == ["late", "low"]  # not the future one, nor another type
    assert await repo.claim_many(types=["sync"], owner="w", now=at(10), lease_s=30, limit=3) == []
    by_age = await repo.claim_many(
        types=["sync", "other"], owner="w", now=at(60), lease_s=30, limit=5, order="age"
    )
    assert [task.id for task in by_age] == ["elsewhere", "future"]


async def test_claim_many_passes_over_full_keys_and_other_queues(repo: Repo) -> None:
    await repo.insert(make("full", priority=3, concurrency_key="acct:1"))
    await repo.insert(make("free", priority=2, concurrency_key="acct:2"))
    await repo.insert(make("plain", priority=1))
    await repo.insert(make("bulk", priority=3).model_copy(update={"queue": "bulk"}))
    got = await repo.claim_many(
        types=["sync"], owner="w", now=at(1), lease_s=30, limit=5, exclude_keys={"acct:1"}
    )
    assert [task.id for task in got] == ["free", "plain"]


async def test_claim_many_takes_no_more_of_a_key_than_its_room(repo: Repo) -> None:
    for i in range(4):
        await repo.insert(make(f"one-{i}", priority=3, concurrency_key="acct:1", created=i))
    await repo.insert(make("two-0", priority=2, concurrency_key="acct:2"))
    await repo.insert(make("two-1", priority=2, concurrency_key="acct:2", created=1))
    await repo.insert(make("plain", priority=1))
    room = {"acct:1": 1, "acct:2": 2}
    got = await repo.claim_many(
        types=["sync"], owner="w", now=at(10), lease_s=30, limit=10, key_room=room.get
    )
    assert [task.id for task in got] == ["one-0", "two-0", "two-1", "plain"]
    # A key with no room left is passed over from the start.
    rest = await repo.claim_many(
        types=["sync"], owner="w", now=at(10), lease_s=30, limit=10, key_room={"acct:1": 0}.get
    )
    assert rest == []


async def test_concurrent_claim_many_never_return_the_same_task(repo: Repo) -> None:
    for i in range(12):
        await repo.insert(make(f"t{i}", priority=i % 3))
    batches = await asyncio.gather(
        *(
            repo.claim_many(types=["sync"], owner=f"w{i}", now=at(1), lease_s=30, limit=5)
            for i in range(4)
        )
    )
    won = [task for batch in batches for task in batch]
    assert len({task.id for task in won}) == len(won) == 12
    for task in won:
        stored = await repo.get(task.id)
        assert (stored.owner, stored.attempts) == (task.owner, 1)
        assert task == stored


async def test_a_lease_of_a_released_attempt_is_lost_when_the_task_is_claimed_again(
    repo: Repo,
) -> None:
    # Release gives the attempt back: the same owner claims the same attempt number again,
    # and the start tells the two claims apart.
    first = await running(repo, make(), owner="w", lease_s=30)
    await repo.release(first.lease, now=at(2))
    again = await repo.claim(types=["sync"], owner="w", now=at(3), lease_s=30)
    assert again is not None
    assert (again.owner, again.attempts) == (first.owner, first.attempts)
    with pytest.raises(TaskLostError):
        await repo.heartbeat(first.lease, now=at(4), lease_s=30, progress=None)
    assert await repo.heartbeat(again.lease, now=at(4), lease_s=30, progress=None) is False


async def test_complete_many_writes_each_as_complete_would_and_reports_lost_leases(
    repo: Repo,
) -> None:
    plain = await running(repo, make("plain"))
    flagged = await running(repo, make("flagged", task_type="flag"))
    await repo.request_cancel(flagged.id, now=at(1))  # completing still wins over a request
    stale = await running(repo, make("stale", task_type="stale"))
    await repo.release(stale.lease, now=at(1))
    progress = Progress(percent=40, message="last words", step=2, total_steps=3)
    answers = await repo.complete_many(
        [
            Completion(plain, at(2), {"rows": 1}, progress),
            Completion(flagged, at(2), None),
            Completion(stale, at(2), {"rows": 3}),
        ]
    )
    done, flagged_done, lost = answers
    assert isinstance(lost, TaskLostError)
    assert lost.task_id == "stale"
    assert (await repo.get("stale")).status is TaskStatus.PENDING
    for task in (done, flagged_done):
        assert isinstance(task, Task)
        assert task == await repo.get(task.id)  # the answer is the task as stored
        assert task.status is TaskStatus.COMPLETED
        assert (task.progress, task.owner, task.completed_at) == (100.0, None, at(2))
        assert task.history[-1].outcome == "completed"
    assert isinstance(done, Task)
    assert (done.result, done.message, done.step) == ({"rows": 1}, "last words", 2)
    assert await repo.complete_many([]) == []


async def test_an_age_claim_takes_the_oldest_due_task_whatever_its_priority(repo: Repo) -> None:
    await repo.insert(make("urgent-late", priority=3, run_at=5))
    await repo.insert(make("low-early", priority=0, run_at=1))
    await repo.insert(make("b", priority=2, run_at=2, created=1))
    await repo.insert(make("a", priority=1, run_at=2, created=1))
    await repo.insert(make("old", priority=0, run_at=2, created=0))
    await repo.insert(make("urgent-future", priority=3, run_at=11))
    await repo.insert(make("elsewhere", task_type="other", priority=0, run_at=0))
    order = []
    while (
        task := await repo.claim(types=["sync"], owner="w", now=at(10), lease_s=30, order="age")
    ) is not None:
        assert task.status is TaskStatus.RUNNING
        order.append(task.id)
    # By run_at, then created_at, then id; not the one not due yet, nor another type's.
    assert order == ["low-early", "old", "a", "b", "urgent-late"]
    got = await repo.claim(types=["sync"], owner="w", now=at(11), lease_s=30, order="age")
    assert got is not None
    assert got.id == "urgent-future"


async def test_an_age_claim_over_several_types_takes_the_oldest_of_them(repo: Repo) -> None:
    await repo.insert(make("sync-new", task_type="sync", priority=3, run_at=3))
    await repo.insert(make("discover-old", task_type="discover", priority=0, run_at=1))
    await repo.insert(make("other-older", task_type="other", priority=0, run_at=0))
    got = await repo.claim(
        types={"sync", "discover"}, owner="w", now=at(5), lease_s=30, order="age"
    )
    assert got is not None
    assert got.id == "discover-old"
    assert await repo.claim(types=[], owner="w", now=at(5), lease_s=30, order="age") is None


async def test_age_and_priority_claims_share_one_queue(repo: Repo) -> None:
    """Each order skips what the other took, and a task back in pending is ordered by its new
    run_at in both."""
    await repo.insert(make("low", priority=0, run_at=0))
    await repo.insert(make("normal", priority=1, run_at=1))
    await repo.insert(make("urgent", priority=3, run_at=2))
    first = await repo.claim(types=["sync"], owner="w", now=at(3), lease_s=30, order="age")
    assert first is not None
    assert first.id == "low"
    # Back to pending, due at 6: now the newest in age order, still the lowest priority.
    await repo.retry_later(first.lease, now=at(4), run_at=at(6), error=BOOM)
    by_priority = await repo.claim(types=["sync"], owner="w", now=at(7), lease_s=30)
    assert by_priority is not None
    assert by_priority.id == "urgent"
    by_age = await repo.claim(types=["sync"], owner="w", now=at(7), lease_s=30, order="age")
    assert by_age is not None
    assert by_age.id == "normal"
    assert await repo.claim(types=["sync"], owner="w", now=at(5), lease_s=30, order="age") is None
    last = await repo.claim(types=["sync"], owner="w", now=at(7), lease_s=30, order="age")
    assert last is not None
    assert (last.id, last.attempts) == ("low", 2)
    assert await repo.claim(types=["sync"], owner="w", now=at(7), lease_s=30) is None
    assert await repo.next_run_at(types=["sync"]) is None


async def test_concurrent_claims_in_both_orders_never_return_the_same_task(repo: Repo) -> None:
    for i in range(10):
        await repo.insert(make(f"t{i}", priority=i % 4, run_at=i))
    claims = await asyncio.gather(
        *(
            repo.claim(
                types=["sync"],
                owner=f"w{i}",
                now=at(10),
                lease_s=30,
                order="age" if i % 2 else "priority",
            )
            for i in range(20)
        )
    )
    won = [task for task in claims if task is not None]
    assert len({task.id for task in won}) == len(won) == 10


async def test_an_unknown_claim_order_is_refused(repo: Repo) -> None:
    task = await repo.insert(make())
    with pytest.raises(ValueError, match="order"):
        await repo.claim(
            types=["sync"],
            owner="w",
            now=at(1),
            lease_s=30,
            order="newest",  # type: ignore[arg-type]
        )
    assert (await repo.get(task.id)).status is TaskStatus.PENDING


async def test_next_run_at_is_the_earliest_pending_run_at_of_the_types(repo: Repo) -> None:
    assert await repo.next_run_at(types=["sync"]) is None
    await repo.insert(make(run_at=30, priority=3))
    await repo.insert(make(run_at=20, priority=0))
    await repo.insert(make(task_type="other", run_at=5))
    assert await repo.next_run_at(types=["sync"]) == at(20)
    assert await repo.next_run_at(types=["sync", "other"]) == at(5)
    assert await repo.next_run_at(types=[]) is None
    await repo.claim(types=["sync"], owner="w", now=at(25), lease_s=30)  # takes run_at 20
    assert await repo.next_run_at(types=["sync"]) == at(30)


# -- heartbeat and fencing --------------------------------------------------------------------


async def test_heartbeat_renews_the_lease_and_records_progress(repo: Repo) -> None:
    task = await running(repo, make())
    progress = Progress(
        percent=40, message="listing", step=2, total_steps=5, step_name="Syncing ecs"
    )
    assert await repo.heartbeat(task.lease, now=at(10), lease_s=30, progress=progress) is False
    stored = await repo.get(task.id)
    assert (stored.lease_until, stored.updated_at) == (at(40), at(10))
    assert (stored.progress, stored.message, stored.step, stored.total_steps) == (
        40,
        "listing",
        2,
        5,
    )
    assert stored.step_name == "Syncing ecs"
    assert await repo.heartbeat(task.lease, now=at(20), lease_s=30, progress=None) is False
    stored = await repo.get(task.id)
    assert (stored.lease_until, stored.progress, stored.message) == (at(50), 40, "listing")


async def test_heartbeat_reports_a_cancel_request(repo: Repo) -> None:
    task = await running(repo, make())
    await repo.request_cancel(task.id, now=at(1))
    assert await repo.heartbeat(task.lease, now=at(2), lease_s=30, progress=None) is True


def _every_fenced_write(repo: Repo, lease: Lease) -> list[Callable[[], Awaitable[Any]]]:
    return [
        lambda: repo.heartbeat(lease, now=at(100), lease_s=30, progress=Progress(percent=99)),
        lambda: repo.complete(lease, now=at(100), result="late"),
        lambda: repo.fail(lease, now=at(100), error=BOOM),
        lambda: repo.retry_later(lease, now=at(100), run_at=at(200), error=BOOM),
        lambda: repo.release(lease, now=at(100)),
        lambda: repo.acknowledge_cancel(lease, now=at(100), result="partial"),
    ]


async def test_a_stale_lease_writes_nothing(repo: Repo) -> None:
    first = await running(repo, make(), owner="w1", lease_s=10)
    assert [t.id for t in await repo.rescue_expired(now=at(11))] == [first.id]
    second = await repo.claim(types=["sync"], owner="w2", now=at(12), lease_s=30)
    assert second is not None
    before = await repo.get(first.id)
    stale = [first.lease, Lease(first.id, "w2", first.attempts), Lease(first.id, "w1", 2)]
    for lease in stale:
        for write in _every_fenced_write(repo, lease):
            with pytest.raises(TaskLostError) as info:
                await write()
            assert (info.value.task_id, info.value.owner) == (lease.task_id, lease.owner)
    assert await repo.get(first.id) == before


async def test_a_finished_or_deleted_task_is_lost_to_its_worker(repo: Repo) -> None:
    task = await running(repo, make())
    await repo.complete(task.lease, now=at(1), result=1)
    done = await repo.get(task.id)
    for write in _every_fenced_write(repo, task.lease):
        with pytest.raises(TaskLostError):
            await write()
    assert await repo.get(task.id) == done
    await repo.delete(task.id)
    with pytest.raises(TaskLostError):
        await repo.heartbeat(task.lease, now=at(2), lease_s=30, progress=None)


# -- finishing writes -------------------------------------------------------------------------


def _record(task: Task) -> AttemptRecord:
    assert task.history
    return task.history[-1]


async def test_complete_stores_the_result_and_records_the_attempt(repo: Repo) -> None:
    task = await running(repo, make(run_at=1), owner="w1")
    done = await repo.complete(task.lease, now=at(5), result={"added": 3})
    assert done == await repo.get(task.id)
    assert done.status is TaskStatus.COMPLETED
    assert (done.result, done.progress, done.error) == ({"added": 3}, 100, None)
    assert (done.completed_at, done.updated_at, done.duration_s()) == (at(5), at(5), 4.0)
    assert (done.owner, done.lease_until) == (None, None)
    assert _record(done) == AttemptRecord(
        attempt=1, owner="w1", started_at=at(1), ended_at=at(5), outcome="completed"
    )


async def test_fail_stores_the_error(repo: Repo) -> None:
    task = await running(repo, make())
    failed = await repo.fail(task.lease, now=at(3), error=BOOM)
    assert failed.status is TaskStatus.FAILED
    assert (failed.error, failed.completed_at, failed.owner) == (BOOM, at(3), None)
    assert (_record(failed).outcome, _record(failed).error) == ("failed", BOOM)


async def test_retry_later_returns_the_task_to_pending_at_run_at(repo: Repo) -> None:
    task = await running(repo, make())
    waiting = await repo.retry_later(task.lease, now=at(3), run_at=at(10), error=BOOM)
    assert waiting.status is TaskStatus.PENDING
    assert (waiting.run_at, waiting.error, waiting.attempts) == (at(10), BOOM, 1)
    assert (waiting.owner, waiting.lease_until, waiting.completed_at) == (None, None, None)
    assert (_record(waiting).outcome, _record(waiting).error) == ("retry", BOOM)
    assert await repo.claim(types=["sync"], owner="w", now=at(9), lease_s=30) is None
    again = await repo.claim(types=["sync"], owner="w", now=at(10), lease_s=30)
    assert again is not None
    assert again.attempts == 2
    completed = await repo.complete(again.lease, now=at(11), result=None)
    assert completed.error is None  # cleared on success; the failure stays in history
    assert [r.outcome for r in completed.history] == ["retry", "completed"]


async def test_release_gives_the_attempt_back(repo: Repo) -> None:
    task = await running(repo, make())
    released = await repo.release(task.lease, now=at(4))
    assert released.status is TaskStatus.PENDING
    assert (released.attempts, released.run_at, released.owner) == (0, at(4), None)
    assert _record(released).outcome == "released"
    again = await repo.claim(types=["sync"], owner="w2", now=at(4), lease_s=30)
    assert again is not None
    assert again.attempts == 1


async def test_acknowledge_cancel_keeps_partial_results(repo: Repo) -> None:
    task = await running(repo, make())
    await repo.request_cancel(task.id, now=at(1))
    cancelled = await repo.acknowledge_cancel(task.lease, now=at(2), result={"done": 5})
    assert cancelled.status is TaskStatus.CANCELLED
    assert (cancelled.result, cancelled.completed_at, cancelled.owner) == ({"done": 5}, at(2), None)
    assert cancelled.error is not None
    assert cancelled.error.type == "cancelled"
    assert _record(cancelled).outcome == "cancelled"


@pytest.mark.parametrize("end", ["release", "retry_later", "rescue"])
async def test_a_pending_cancel_request_is_never_lost_by_a_return_to_pending(
    repo: Repo, end: str
) -> None:
    # The owner had not seen the request (no heartbeat since) when it handed the task back, or
    # it died: the next claim would clear the flag, so the task ends cancelled instead.
    task = await running(repo, make(max_retries=3), lease_s=10)
    await repo.request_cancel(task.id, now=at(1))
    if end == "release":
        ended = await repo.release(task.lease, now=at(2))
    elif end == "retry_later":
        ended = await repo.retry_later(task.lease, now=at(2), run_at=at(5), error=BOOM)
    else:
        [ended] = await repo.rescue_expired(now=at(11))
    assert ended == await repo.get(task.id)
    assert ended.status is TaskStatus.CANCELLED
    assert (ended.attempts, ended.owner, ended.lease_until) == (1, None, None)
    assert ended.error is not None
    assert ended.error.type == "cancelled"
    assert (_record(ended).outcome, _record(ended).attempt) == ("cancelled", 1)
    assert await repo.claim(types=["sync"], owner="w2", now=at(20), lease_s=30) is None


async def test_without_a_cancel_request_release_and_retry_later_return_to_pending(
    repo: Repo,
) -> None:
    released = await running(repo, make(task_type="a"))
    assert (await repo.release(released.lease, now=at(2))).status is TaskStatus.PENDING
    retried = await running(repo, make(task_type="b"))
    waiting = await repo.retry_later(retried.lease, now=at(2), run_at=at(3), error=BOOM)
    assert waiting.status is TaskStatus.PENDING


# -- rescue -----------------------------------------------------------------------------------


async def test_rescue_returns_expired_leases_to_pending(repo: Repo) -> None:
    expired = await running(repo, make(task_type="a"), owner="dead", lease_s=10)
    alive = await running(repo, make(task_type="b"), owner="alive", lease_s=20)
    assert await repo.rescue_expired(now=at(10)) == []  # lease_until == now is not expired
    rescued = await repo.rescue_expired(now=at(15))
    assert rescued == [await repo.get(expired.id)]
    task = rescued[0]
    assert task.status is TaskStatus.PENDING
    assert (task.run_at, task.attempts, task.owner, task.lease_until) == (at(15), 1, None, None)
    assert task.error is not None
    assert task.error.type == "lease_expired"
    assert (_record(task).outcome, _record(task).owner) == ("rescued", "dead")
    assert (await repo.get(alive.id)).status is TaskStatus.RUNNING


async def test_rescue_fails_a_task_whose_attempts_are_used_up(repo: Repo) -> None:
    task = await running(repo, make(max_retries=0), lease_s=10)
    [failed] = await repo.rescue_expired(now=at(11))
    assert failed.status is TaskStatus.FAILED
    assert failed.error is not None
    assert failed.error.type == "lease_expired"
    assert (failed.completed_at, failed.attempts) == (at(11), 1)
    assert failed == await repo.get(task.id)


async def test_rescue_takes_the_oldest_leases_first_up_to_limit(repo: Repo) -> None:
    for i, lease_s in enumerate([30, 10, 20]):
        await running(repo, make(f"t{i}", task_type=f"type{i}"), lease_s=lease_s)
    assert [t.id for t in await repo.rescue_expired(now=at(60), limit=2)] == ["t1", "t2"]
    assert [t.id for t in await repo.rescue_expired(now=at(60), limit=2)] == ["t0"]
    assert await repo.rescue_expired(now=at(60), limit=0) == []


async def test_rescue_never_overwrites_a_task_finished_or_renewed_in_between(
    repo: Repo, is_wire: bool
) -> None:
    for i in range(8 if is_wire else 30):
        task = await running(repo, make(task_type=f"race{i}"), lease_s=10)
        rescue = repo.rescue_expired(now=at(20))
        if i % 3 == 2:
            finish: Awaitable[Any] = repo.heartbeat(
                task.lease, now=at(20), lease_s=30, progress=None
            )
        else:
            finish = repo.complete(task.lease, now=at(20), result=i)
        racers = (rescue, finish) if i % 2 else (finish, rescue)
        outcomes = await asyncio.gather(*racers, return_exceptions=True)
        rescued, finished = (outcomes[0], outcomes[1]) if i % 2 else (outcomes[1], outcomes[0])
        stored = await repo.get(task.id)
        assert isinstance(rescued, list)
        if isinstance(finished, TaskLostError):  # the sweeper won: the worker wrote nothing
            assert rescued == [stored]
            assert stored.status is TaskStatus.PENDING
        else:  # the worker won: the sweeper left its write alone
            assert not isinstance(finished, BaseException)
            assert rescued == []
            assert stored.status is (TaskStatus.RUNNING if i % 3 == 2 else TaskStatus.COMPLETED)
            assert "rescued" not in [record.outcome for record in stored.history]


# -- operator actions -------------------------------------------------------------------------


async def test_request_cancel_cancels_a_pending_task_at_once(repo: Repo) -> None:
    task = await repo.insert(make())
    cancelled = await repo.request_cancel(task.id, now=at(3))
    assert cancelled.status is TaskStatus.CANCELLED
    assert (cancelled.completed_at, cancelled.history) == (at(3), ())
    assert await repo.claim(types=["sync"], owner="w", now=at(4), lease_s=30) is None


async def test_request_cancel_asks_a_running_task_to_stop(repo: Repo) -> None:
    task = await running(repo, make())
    flagged = await repo.request_cancel(task.id, now=at(3))
    assert flagged.status is TaskStatus.RUNNING
    assert (flagged.cancel_requested, flagged.owner, flagged.updated_at) == (True, "w1", at(3))
    assert await repo.request_cancel(task.id, now=at(4)) == await repo.get(task.id)


async def test_request_cancel_of_a_finished_or_missing_task_is_refused(repo: Repo) -> None:
    task = await running(repo, make())
    done = await repo.complete(task.lease, now=at(1), result=None)
    with pytest.raises(IllegalTransitionError) as info:
        await repo.request_cancel(task.id, now=at(2))
    assert (info.value.status, info.value.action) == ("completed", "cancel")
    assert await repo.get(task.id) == done
    with pytest.raises(TaskNotFoundError):
        await repo.request_cancel("missing", now=at(2))


@pytest.mark.parametrize("end", ["fail", "cancel"])
async def test_retry_rerun_a_failed_or_cancelled_task_as_fresh(repo: Repo, end: str) -> None:
    task = await running(repo, make(), owner="w1")
    await repo.heartbeat(task.lease, now=at(1), lease_s=30, progress=Progress(percent=60))
    if end == "fail":
        await repo.fail(task.lease, now=at(2), error=BOOM)
    else:
        await repo.request_cancel(task.id, now=at(2))
        await repo.acknowledge_cancel(task.lease, now=at(2), result="partial")
    fresh = await repo.retry(task.id, now=at(5))
    assert fresh.status is TaskStatus.PENDING
    assert (fresh.run_at, fresh.attempts, fresh.result, fresh.error) == (at(5), 0, None, None)
    assert (fresh.progress, fresh.started_at, fresh.completed_at) == (0, None, None)
    assert (fresh.owner, fresh.cancel_requested, fresh.updated_at) == (None, False, at(5))
    assert len(fresh.history) == 1
    again = await repo.claim(types=["sync"], owner="w2", now=at(5), lease_s=30)
    assert again is not None
    assert again.attempts == 1


async def test_retry_of_an_active_or_completed_task_is_refused(repo: Repo) -> None:
    pending = await repo.insert(make(task_type="p"))
    active = await running(repo, make(task_type="r"))
    completed = await running(repo, make(task_type="c"))
    await repo.complete(completed.lease, now=at(1), result=None)
    for task, status in [(pending, "pending"), (active, "running"), (completed, "completed")]:
        before = await repo.get(task.id)
        with pytest.raises(IllegalTransitionError) as info:
            await repo.retry(task.id, now=at(2))
        assert (info.value.status, info.value.action) == (status, "retry")
        assert await repo.get(task.id) == before
    with pytest.raises(TaskNotFoundError):
        await repo.retry("missing", now=at(2))


async def test_delete_removes_only_finished_tasks(repo: Repo) -> None:
    pending = await repo.insert(make(task_type="p"))
    active = await running(repo, make(task_type="r"))
    for task in (pending, active):
        with pytest.raises(IllegalTransitionError) as info:
            await repo.delete(task.id)
        assert info.value.action == "delete"
        await repo.get(task.id)
    cancelled = await repo.request_cancel(pending.id, now=at(1))
    await repo.delete(cancelled.id)
    with pytest.raises(TaskNotFoundError):
        await repo.get(cancelled.id)
    with pytest.raises(TaskNotFoundError):
        await repo.delete(cancelled.id)


async def test_a_deleted_idempotency_key_can_be_used_again(repo: Repo) -> None:
    first = await repo.insert(make(idempotency_key="k"))
    await repo.request_cancel(first.id, now=at(1))
    await repo.delete(first.id)
    second = await repo.insert(make(idempotency_key="k"))
    assert second.id != first.id


# -- list and count ---------------------------------------------------------------------------


async def _listing_fixture(repo: Repo) -> None:
    """Six tasks created a second apart, newest last; t2 and t2b share their created_at."""
    specs = [
        ("t0", 0, "sync", "alice", "p1"),
        ("t1", 1, "discover", "bob", "p2"),
        ("t2", 2, "sync", "alice", None),
        ("t2b", 2, "sync", "carol", "p1"),
        ("t3", 3, "discover", "alice", "p1"),
        ("t4", 4, "sync", "bob", "p2"),
    ]
    for task_id, created, task_type, created_by, project in specs:
        task = make(
            task_id, task_type=task_type, created=created, created_by=created_by, project_id=project
        )
        await repo.insert(task)
    await repo.request_cancel("t3", now=at(10))


async def _ids(repo: Repo, query: TaskFilter, offset: int = 0, limit: int = 50) -> list[str]:
    return [task.id for task in (await repo.list(query, offset=offset, limit=limit)).tasks]


async def test_list_pages_newest_first_with_ties_by_id(repo: Repo) -> None:
    await _listing_fixture(repo)
    assert await _ids(repo, TaskFilter()) == ["t4", "t3", "t2b", "t2", "t1", "t0"]
    page = await repo.list(TaskFilter(), offset=2, limit=3)
    assert ([t.id for t in page.tasks], page.total) == (["t2b", "t2", "t1"], 6)
    assert await _ids(repo, TaskFilter(), offset=6) == []
    only_total = await repo.list(TaskFilter(), offset=0, limit=0)
    assert (only_total.tasks, only_total.total) == ([], 6)


async def test_list_filters_combine(repo: Repo) -> None:
    await _listing_fixture(repo)
    sync, discover = frozenset({"sync"}), frozenset({"discover"})
    pending, cancelled = frozenset({TaskStatus.PENDING}), frozenset({TaskStatus.CANCELLED})
    assert await _ids(repo, TaskFilter(types=sync)) == ["t4", "t2b", "t2", "t0"]
    assert await _ids(repo, TaskFilter(statuses=cancelled)) == ["t3"]
    assert await _ids(repo, TaskFilter(types=discover, statuses=pending)) == ["t1"]
    both = TaskFilter(types=sync | discover, statuses=pending | cancelled)
    assert await _ids(repo, both, offset=1, limit=2) == ["t3", "t2b"]
    assert await _ids(repo, TaskFilter(created_by="alice")) == ["t3", "t2", "t0"]
    assert await _ids(repo, TaskFilter(types=sync, created_by="alice")) == ["t2", "t0"]
    assert await _ids(repo, TaskFilter(project_ids=frozenset({"p1"}))) == ["t3", "t2b", "t0"]
    assert await _ids(repo, TaskFilter(updated_since=at(3))) == ["t4", "t3"]
    page = await repo.list(TaskFilter(created_by="alice"), offset=1, limit=1)
    assert ([t.id for t in page.tasks], page.total) == (["t2"], 3)
    nothing = await repo.list(TaskFilter(types=frozenset()), offset=0, limit=10)
    assert (nothing.tasks, nothing.total) == ([], 0)
    assert await _ids(repo, TaskFilter(types=frozenset({"unknown"}))) == []


async def test_list_rejects_pages_out_of_bounds(repo: Repo) -> None:
    for offset, limit in [(-1, 10), (0, -1), (0, 10_000)]:
        with pytest.raises(ValueError, match="limit"):
            await repo.list(TaskFilter(), offset=offset, limit=limit)


async def test_count_by_status_has_every_status(repo: Repo) -> None:
    assert await repo.count_by_status() == dict.fromkeys(TaskStatus, 0)
    await _listing_fixture(repo)
    await running(repo, make("run", task_type="solo"))
    pending, running_, cancelled = TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.CANCELLED
    zeros = dict.fromkeys(TaskStatus, 0)
    assert await repo.count_by_status() == {**zeros, pending: 5, running_: 1, cancelled: 1}
    by_alice = await repo.count_by_status(TaskFilter(created_by="alice"))
    assert by_alice == {**zeros, pending: 2, cancelled: 1}
    sync_pending = TaskFilter(types=frozenset({"sync"}), statuses=frozenset({pending}))
    assert await repo.count_by_status(sync_pending) == {**zeros, pending: 4}


# -- retention --------------------------------------------------------------------------------


async def test_retention_expires_only_finished_tasks(make_repo: MakeRepo) -> None:
    repo = await make_repo(retention_s=60)
    done = await running(repo, make(task_type="a"))
    failed = await running(repo, make(task_type="b"))
    stopped = await running(repo, make(task_type="c"))
    rescued_out = await running(repo, make(task_type="d", max_retries=0), lease_s=1)
    cancelled = await repo.insert(make(task_type="e"))
    active = await running(repo, make(task_type="f"), lease_s=100)
    pending = await repo.insert(make(task_type="g"))

    await repo.complete(done.lease, now=at(10), result=None)
    await repo.fail(failed.lease, now=at(11), error=BOOM)
    await repo.acknowledge_cancel(stopped.lease, now=at(12))
    await repo.rescue_expired(now=at(13))
    await repo.request_cancel(cancelled.id, now=at(14))
    await repo.heartbeat(active.lease, now=at(15), lease_s=100, progress=None)
    await repo.request_cancel(active.id, now=at(15))

    expected = [(done, 70), (failed, 71), (stopped, 72), (rescued_out, 73), (cancelled, 74)]
    for task, seconds in expected:
        assert await repo.expires_at(task.id) == at(seconds)
    assert await repo.expires_at(active.id) is None
    assert await repo.expires_at(pending.id) is None

    retried = await repo.retry(failed.id, now=at(20))
    assert await repo.expires_at(retried.id) is None


async def test_without_retention_nothing_expires(repo: Repo) -> None:
    task = await running(repo, make())
    await repo.complete(task.lease, now=at(1), result=None)
    assert await repo.expires_at(task.id) is None


# -- queues, unique keys, concurrency keys ------------------------------------------------------


async def test_a_claim_takes_tasks_of_its_queue_only(repo: Repo) -> None:
    await repo.insert(make("a1", queue="a", priority=3))
    await repo.insert(make("b1", queue="b"))
    claimed = await repo.claim(types=["sync"], owner="w", now=at(0), lease_s=30, queue="b")
    assert claimed is not None
    assert claimed.id == "b1"
    assert await repo.claim(types=["sync"], owner="w", now=at(0), lease_s=30, queue="b") is None
    default = await repo.claim(types=["sync"], owner="w", now=at(0), lease_s=30)
    assert default is None  # nothing in the default queue
    assert await repo.next_run_at(types=["sync"], queues=["a"]) == at(0)
    assert await repo.next_run_at(types=["sync"], queues=["c"]) is None


@pytest.mark.parametrize("order", ["priority", "age"])
async def test_a_claim_passes_over_excluded_concurrency_keys(repo: Repo, order: str) -> None:
    await repo.insert(make("full", created=0, concurrency_key="acct:1", priority=3))
    await repo.insert(make("free", created=1, concurrency_key="acct:2"))
    await repo.insert(make("plain", created=2))
    found = await repo.claim(
        types=["sync"],
        owner="w",
        now=at(5),
        lease_s=30,
        order=order,  # type: ignore[arg-type]
        exclude_keys={"acct:1"},
    )
    assert found is not None
    assert found.id == "free"
    again = await repo.claim(
        types=["sync"], owner="w", now=at(5), lease_s=30, exclude_keys={"acct:1", "acct:2"}
    )
    assert again is not None
    assert again.id == "plain"


async def test_unclaim_returns_a_task_as_if_it_was_never_claimed(repo: Repo) -> None:
    task = await running(repo, make(max_retries=0))
    back = await repo.unclaim(task.lease, now=at(1))
    assert back.status is TaskStatus.PENDING
    assert (back.attempts, back.owner, back.lease_until, back.started_at) == (0, None, None, None)
    assert back.history == ()
    with pytest.raises(TaskLostError):
        await repo.unclaim(task.lease, now=at(2))
    again = await repo.claim(types=["sync"], owner="w2", now=at(2), lease_s=30)
    assert again is not None
    assert again.attempts == 1


async def test_one_active_task_per_unique_key_and_project(repo: Repo) -> None:
    first = await repo.insert(make("t1", unique_key="sync:aliyun:123", project_id="p"))
    joined = await repo.insert(make("t2", unique_key="sync:aliyun:123", project_id="p"))
    assert joined.id == first.id
    other_project = await repo.insert(make("t3", unique_key="sync:aliyun:123", project_id="q"))
    assert other_project.id == "t3"
    claimed = await repo.claim(types=["sync"], owner="w", now=at(0), lease_s=30)
    assert claimed is not None
    still = await repo.insert(
        make("t4", unique_key="sync:aliyun:123", project_id=claimed.project_id)
    )
    assert still.id == claimed.id  # running still holds the key
    await repo.complete(claimed.lease, now=at(1), result=None)
    after = await repo.insert(
        make("t5", unique_key="sync:aliyun:123", project_id=claimed.project_id)
    )
    assert after.id == "t5"  # the key is free once the task ended


async def test_racing_submits_with_one_unique_key_store_one_task(repo: Repo) -> None:
    stored = await asyncio.gather(
        *(repo.insert(make(f"r{n}", unique_key="one")) for n in range(10))
    )
    assert len({task.id for task in stored}) == 1
    page = await repo.list(TaskFilter(), offset=0, limit=50)
    assert page.total == 1


async def test_a_retry_is_refused_while_another_task_holds_its_unique_key(repo: Repo) -> None:
    failed = await running(repo, make("old", unique_key="k"))
    await repo.fail(failed.lease, now=at(1), error=BOOM)
    active = await repo.insert(make("new", created=2, unique_key="k"))
    assert active.id == "new"
    with pytest.raises(ActiveTaskExistsError) as info:
        await repo.retry("old", now=at(3))
    assert info.value.active_task_id == "new"
    await repo.request_cancel("new", now=at(4))
    retried = await repo.retry("old", now=at(5))
    assert retried.status is TaskStatus.PENDING
    assert (await repo.insert(make("third", unique_key="k"))).id == "old"


async def test_a_bulk_retry_passes_over_tasks_whose_unique_key_is_held(repo: Repo) -> None:
    for task_id in ("old", "plain"):
        failed = await running(repo, make(task_id, task_type=task_id, unique_key=None))
        await repo.fail(failed.lease, now=at(1), error=BOOM)
    keyed = await running(repo, make("keyed", task_type="keyed", unique_key="k"))
    await repo.fail(keyed.lease, now=at(1), error=BOOM)
    holder = await repo.insert(make("holder", created=2, unique_key="k"))

    count = await repo.retry_many(TaskFilter(statuses=frozenset({TaskStatus.FAILED})), now=at(3))

    assert count == 2
    assert (await repo.get("keyed")).status is TaskStatus.FAILED  # its key is the holder's
    assert (await repo.insert(make("again", unique_key="k"))).id == holder.id


async def test_a_new_attempt_forgets_the_step_name_of_the_last(repo: Repo) -> None:
    task = await running(repo, make(), owner="w1", lease_s=30)
    progress = Progress(percent=40, step=2, total_steps=5, step_name="内容生成")
    await repo.heartbeat(task.lease, now=at(5), lease_s=30, progress=progress)
    await repo.retry_later(task.lease, now=at(7), run_at=at(8), error=BOOM)
    assert (await repo.get(task.id)).step_name == "内容生成"
    again = await repo.claim(types=["sync"], owner="w2", now=at(9), lease_s=10)
    assert again is not None
    assert again.step_name is None
