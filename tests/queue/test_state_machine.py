"""Random sequences of everything that can happen to stored tasks, against the real stores.

A Hypothesis state machine drives a repository (memory, and Mongo on mongomock-motor) with a
ManualClock: submits, claims by several workers, heartbeats with progress, every way an attempt
ends (complete, fail, retry_later as the runner uses it, release, acknowledge_cancel), cancel
requests, rescue sweeps, operator retry and delete, and the clock moving on. Workers keep every
lease they were ever given and keep using them, so stale leases write as often as live ones.

After every step the whole store is compared with the step before:

- a task changes only when the step may change it, and only by a transition
  ``TRANSITIONS`` allows for what the step did, so a terminal task stays terminal except for an
  explicit retry (to pending) or delete (gone);
- a running task has exactly one owner and a lease, any other task neither, and only the lease
  matching the stored (owner, attempt) writes: every other one gets TaskLostError and changes
  nothing;
- ``attempts`` never exceeds ``max_retries + 1``;
- progress never decreases within an attempt;
- a cancel request on a running task is never dropped: such a task leaves running only as
  cancelled, completed or failed, never back to pending.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
)

from cam_tasks.domain import (
    TRANSITIONS,
    Action,
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
from cam_tasks.repository import ClaimOrder, MemoryTaskRepository, MongoTaskRepository
from tests.repository.test_task_repository_contract import T0

T = TypeVar("T")

TYPE = "t"
LEASE_S = 10.0
OWNERS = ("w1", "w2", "w3")
BOOM = TaskError(type="RuntimeError", message="boom")
_R = TaskStatus.RUNNING

Snapshot = dict[str, Task]


def legal(before: TaskStatus | None, after: TaskStatus | None, actions: Collection[Action]) -> bool:
    """Whether one of ``actions`` leads from ``before`` to ``after`` (None: no task)."""
    return any(
        before in TRANSITIONS[action].sources and after == TRANSITIONS[action].target
        for action in actions
    )


class TaskStoreMachine(RuleBasedStateMachine):
    """The machine; subclasses choose the backend in :meth:`make_repository`."""

    tasks = Bundle("tasks")
    leases = Bundle("leases")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock(T0)
        self.repo = self.make_repository()
        self.run(self.repo.initialize())
        self.snapshot: Snapshot = {}
        #: The highest progress each lease has reported: a worker's own never goes back.
        self.reported: dict[Lease, float] = {}
        #: The highest progress seen stored for each task since its last claim.
        self.floor: dict[str, float] = {}

    def make_repository(self) -> MemoryTaskRepository | MongoTaskRepository:
        raise NotImplementedError

    def teardown(self) -> None:
        self.run(self.repo.close())
        self.loop.close()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    # -- observing the store ---------------------------------------------------------------

    def read(self) -> Snapshot:
        page = self.run(self.repo.list(TaskFilter(), offset=0, limit=200))
        assert page.total == len(page.tasks)
        return {task.id: task for task in page.tasks}

    def settle(
        self, actions: Collection[Action], touched: Collection[str] | None, *, insert: bool = False
    ) -> Snapshot:
        """Read the store after a step that did ``actions`` to ``touched`` (None: to any
        task), or inserted them; check every difference from the previous step; return the
        new snapshot."""
        before, after = self.snapshot, self.read()
        for task_id in before.keys() | after.keys():
            old, new = before.get(task_id), after.get(task_id)
            if old == new:
                continue
            assert touched is None or task_id in touched, f"{task_id} changed unasked"
            if old is None and insert:
                assert new is not None
                assert new.status is TaskStatus.PENDING
                continue
            old_status = None if old is None else old.status
            new_status = None if new is None else new.status
            if old_status != new_status:
                assert legal(old_status, new_status, actions), (old_status, new_status, actions)
            if old is not None and old.status is _R and old.cancel_requested:
                assert new_status is not TaskStatus.PENDING, "a cancel request was lost"
        self.snapshot = after
        return after

    def live(self, lease: Lease) -> bool:
        task = self.snapshot.get(lease.task_id)
        return (
            task is not None
            and task.status is _R
            and (task.owner, task.attempts) == (lease.owner, lease.attempt)
            # A released attempt is given back, so the same owner may hold the same attempt
            # number again: the start tells the claims apart.
            and task.started_at == lease.started_at
        )

    def fenced(
        self, lease: Lease, write: Coroutine[Any, Any, T], action: Action | None
    ) -> T | None:
        """Make a fenced write (``action``: the transition it makes, None for none): with the
        live lease it must succeed, with any other it must raise TaskLostError and change
        nothing at all."""
        if self.live(lease):
            result = self.run(write)
            actions = set() if action is None else {action}
            if action in (Action.RELEASE, Action.RETRY_LATER):
                actions.add(Action.ACKNOWLEDGE_CANCEL)  # a pending cancel request wins
            self.settle(actions, {lease.task_id})
            return result
        with pytest.raises(TaskLostError) as lost:
            self.run(write)
        assert (lost.value.task_id, lost.value.owner, lost.value.attempt) == (
            lease.task_id,
            lease.owner,
            lease.attempt,
        )
        self.settle((), ())
        return None

    # -- submit and claim ----------------------------------------------------------------

    @rule(
        target=tasks,
        max_retries=st.integers(0, 2),
        priority=st.integers(0, 3),
        delay_s=st.sampled_from([0.0, 0.0, 5.0]),
    )
    def submit(self, max_retries: int, priority: int, delay_s: float) -> str:
        now = self.clock.now()
        task = new_task(
            task_type=TYPE,
            params={},
            now=now,
            run_at=now + timedelta(seconds=delay_s),
            priority=priority,
            max_retries=max_retries,
        )
        stored = self.run(self.repo.insert(task))
        assert stored == task
        self.settle((), {task.id}, insert=True)
        return task.id

    @rule(
        target=leases,
        owner=st.sampled_from(OWNERS),
        order=st.sampled_from(["priority", "age"]),
    )
    def claim(self, owner: str, order: ClaimOrder) -> Any:
        now = self.clock.now()
        due = sorted(
            (
                t
                for t in self.snapshot.values()
                if t.status is TaskStatus.PENDING and t.run_at <= now
            ),
            key=lambda t: (
                (-t.priority if order == "priority" else 0),
                t.run_at,
                t.created_at,
                t.id,
            ),
        )
        claimed = self.run(
            self.repo.claim(types=[TYPE], owner=owner, now=now, lease_s=LEASE_S, order=order)
        )
        if claimed is None:
            assert not due
            self.settle((), ())
            return multiple()
        assert due
        assert claimed.id == due[0].id  # the best due task, and only a pending one
        assert (claimed.owner, claimed.attempts) == (owner, due[0].attempts + 1)
        assert claimed.cancel_requested is False
        assert claimed.progress == 0
        self.floor[claimed.id] = 0.0  # a new attempt starts from nothing
        self.settle({Action.CLAIM}, {claimed.id})
        return claimed.lease

    # -- the worker side ---------------------------------------------------------------------

    @rule(lease=leases, step=st.sampled_from([None, 0.0, 7.5, 30.0]))
    def heartbeat(self, lease: Lease, step: float | None) -> None:
        progress = None
        if step is not None:
            percent = min(100.0, self.reported.get(lease, 0.0) + step)
            self.reported[lease] = percent
            progress = Progress(percent=percent, message=f"{percent}")
        expected = self.snapshot.get(lease.task_id)
        flagged = self.fenced(
            lease,
            self.repo.heartbeat(lease, now=self.clock.now(), lease_s=LEASE_S, progress=progress),
            None,
        )
        if flagged is not None:
            assert expected is not None
            assert flagged is expected.cancel_requested
            renewed = self.snapshot[lease.task_id]
            assert renewed.lease_until == self.clock.now() + timedelta(seconds=LEASE_S)

    @rule(lease=leases)
    def complete(self, lease: Lease) -> None:
        done = self.fenced(
            lease,
            self.repo.complete(lease, now=self.clock.now(), result={"by": lease.owner}),
            Action.COMPLETE,
        )
        if done is not None:
            assert (done.status, done.progress, done.result) == (
                TaskStatus.COMPLETED,
                100,
                {"by": lease.owner},
            )

    @rule(lease=leases)
    def fail(self, lease: Lease) -> None:
        self.fenced(lease, self.repo.fail(lease, now=self.clock.now(), error=BOOM), Action.FAIL)

    @rule(lease=leases, delay_s=st.sampled_from([0.0, 1.0, 20.0]))
    def error(self, lease: Lease, delay_s: float) -> None:
        """An executor error, recorded as the runner records it: retry while attempts remain,
        else fail."""
        task = self.snapshot.get(lease.task_id)
        now = self.clock.now()
        if task is not None and lease.attempt >= task.max_attempts:
            self.fenced(lease, self.repo.fail(lease, now=now, error=BOOM), Action.FAIL)
            return
        run_at = now + timedelta(seconds=delay_s)
        self.fenced(
            lease,
            self.repo.retry_later(lease, now=now, run_at=run_at, error=BOOM),
            Action.RETRY_LATER,
        )

    @rule(lease=leases)
    def release(self, lease: Lease) -> None:
        self.fenced(lease, self.repo.release(lease, now=self.clock.now()), Action.RELEASE)

    @rule(lease=leases)
    def acknowledge_cancel(self, lease: Lease) -> None:
        self.fenced(
            lease,
            self.repo.acknowledge_cancel(lease, now=self.clock.now(), result={"partial": 1}),
            Action.ACKNOWLEDGE_CANCEL,
        )

    def running(self) -> list[str]:
        return sorted(task.id for task in self.snapshot.values() if task.status is _R)

    @rule(
        data=st.data(),
        how=st.sampled_from(["heartbeat", "complete", "fail", "error", "release", "acknowledge"]),
    )
    def owner_acts(self, data: st.DataObject, how: str) -> None:
        """The worker that holds a running task acts on it (random leases from the bundle are
        mostly stale; this reaches the live-lease paths often)."""
        running = self.running()
        if not running:
            return
        lease = self.snapshot[data.draw(st.sampled_from(running))].lease
        if how == "heartbeat":
            self.heartbeat(lease, 7.5)
        elif how == "complete":
            self.complete(lease)
        elif how == "fail":
            self.fail(lease)
        elif how == "error":
            self.error(lease, 1.0)
        elif how == "release":
            self.release(lease)
        else:
            self.acknowledge_cancel(lease)

    # -- time and the sweeper ----------------------------------------------------------------

    @rule(seconds=st.sampled_from([0.5, 3.0, LEASE_S / 2, LEASE_S + 1]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def rescue(self) -> None:
        now = self.clock.now()
        expired = {
            t.id
            for t in self.snapshot.values()
            if t.status is _R and t.lease_until is not None and t.lease_until < now
        }
        rescued = self.run(self.repo.rescue_expired(now=now))
        assert {t.id for t in rescued} == expired
        actions = {Action.RESCUE, Action.RESCUE_EXHAUSTED, Action.ACKNOWLEDGE_CANCEL}
        before_all = self.snapshot
        after = self.settle(actions, expired)
        for task_id in expired:
            before, task = before_all[task_id], after[task_id]
            if before.cancel_requested:
                assert task.status is TaskStatus.CANCELLED
            elif task.attempts >= task.max_attempts:
                assert task.status is TaskStatus.FAILED
            else:
                assert task.status is TaskStatus.PENDING
            assert task.history[-1].owner == before.owner

    # -- operator actions ---------------------------------------------------------------------

    @rule(task_id=tasks)
    def request_cancel(self, task_id: str) -> None:
        before = self.snapshot.get(task_id)
        try:
            task = self.run(self.repo.request_cancel(task_id, now=self.clock.now()))
        except TaskNotFoundError:
            assert before is None
        except IllegalTransitionError:
            assert before is not None
            assert before.status.is_terminal
        else:
            assert before is not None
            if before.status is TaskStatus.PENDING:
                assert task.status is TaskStatus.CANCELLED
            else:
                assert (task.status, task.cancel_requested) == (_R, True)
                assert (task.owner, task.attempts) == (before.owner, before.attempts)
        self.settle({Action.CANCEL}, {task_id})

    @rule(data=st.data())
    def cancel_a_running_task(self, data: st.DataObject) -> None:
        running = self.running()
        if running:
            self.request_cancel(data.draw(st.sampled_from(running)))

    @rule(task_id=tasks)
    def retry(self, task_id: str) -> None:
        before = self.snapshot.get(task_id)
        try:
            task = self.run(self.repo.retry(task_id, now=self.clock.now()))
        except TaskNotFoundError:
            assert before is None
        except IllegalTransitionError:
            assert before is not None
            assert before.status not in TRANSITIONS[Action.RETRY].sources
        else:
            assert before is not None
            assert (task.status, task.attempts, task.owner) == (TaskStatus.PENDING, 0, None)
        self.settle({Action.RETRY}, {task_id})

    @rule(task_id=consumes(tasks))
    def delete(self, task_id: str) -> None:
        before = self.snapshot.get(task_id)
        try:
            self.run(self.repo.delete(task_id))
        except TaskNotFoundError:
            assert before is None
        except IllegalTransitionError:
            assert before is not None
            assert not before.status.is_terminal
        else:
            assert before is not None
            assert before.status.is_terminal
        self.settle({Action.DELETE}, {task_id})

    # -- invariants on every state -----------------------------------------------------------

    @invariant()
    def owners_leases_attempts_and_progress(self) -> None:
        for task in self.snapshot.values():
            assert 0 <= task.attempts <= task.max_attempts, task
            if task.status is _R:
                assert task.owner is not None
                assert task.lease_until is not None
                assert task.attempts >= 1
                assert task.progress >= self.floor.get(task.id, 0.0), "progress went back"
                self.floor[task.id] = task.progress
            else:
                assert (task.owner, task.lease_until) == (None, None), task
                assert task.cancel_requested is False or task.status.is_terminal, task
            if task.status is TaskStatus.COMPLETED:
                assert task.progress == 100


class MemoryMachine(TaskStoreMachine):
    def make_repository(self) -> MemoryTaskRepository:
        return MemoryTaskRepository(clock=self.clock)


class MongomockMachine(TaskStoreMachine):
    def make_repository(self) -> MongoTaskRepository:
        from mongomock_motor import AsyncMongoMockClient

        return MongoTaskRepository(AsyncMongoMockClient()["state_machine"])


# Examples are short (milliseconds each), so many are cheap: at 200 the memory machine finds a
# dropped cancel request (release of a flagged task back to pending) every time, in ~2 s.
_SETTINGS = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

TestMemoryTaskStore = MemoryMachine.TestCase
TestMemoryTaskStore.settings = _SETTINGS
TestMongomockTaskStore = MongomockMachine.TestCase
TestMongomockTaskStore.settings = settings(_SETTINGS, max_examples=100)
