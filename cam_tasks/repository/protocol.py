"""The storage contracts, all in one place: tasks, schedules, the asset inventory. Every backend
(``memory/``, ``mongo/``) passes one shared contract suite per protocol (tests/repository/).

Concurrency: every method is safe to call from many coroutines and many processes sharing one
database. State changes are single atomic conditional updates whose filter encodes the legal
source statuses of the transition table (``TRANSITIONS[action].sources``), so two racing callers
can never both win, and a transition the table forbids is never written.

Fencing: methods taking a :class:`Lease` match ``{_id, owner, attempts, status: running}``;
when nothing matches they raise :class:`TaskLostError` and change nothing.

Errors: a backend that cannot reach its database raises :class:`DatabaseUnavailableError`
(driver errors are translated at this boundary and never escape it).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from cam_tasks.domain import (
    DEFAULT_QUEUE,
    Asset,
    AssetFilter,
    AssetScope,
    AssetSort,
    AssetSummary,
    AssetSync,
    Lease,
    Progress,
    Schedule,
    StoredAsset,
    Task,
    TaskError,
    TaskFilter,
    TaskLostError,
    TaskPage,
    TaskStatus,
)
from cam_tasks.domain.stats import TaskStats

__all__ = [
    "AssetInventory",
    "ClaimOrder",
    "Completion",
    "KeySlotRepository",
    "QueueRepository",
    "ScheduleRepository",
    "TaskRepository",
]

#: Which due task a claim takes: ``priority`` (the normal order) or ``age`` (the oldest, whatever
#: its priority; the dispatcher's periodic fair claim, see docs/scheduling.md).
ClaimOrder = Literal["priority", "age"]


@dataclass(frozen=True, slots=True)
class Completion:
    """One attempt to mark completed (what :meth:`TaskRepository.complete` takes), for
    :meth:`TaskRepository.complete_many`: ``task`` as it was claimed (its lease names the
    attempt)."""

    task: Task
    now: datetime
    result: Any
    progress: Progress | None = None

    @property
    def lease(self) -> Lease:
        return self.task.lease


class TaskRepository(Protocol):
    async def initialize(self) -> None:
        """Create indexes (idempotent) and check the connection. Call once before use."""
        ...

    async def close(self) -> None:
        """Release what the repository owns (not a database handle it was given). Idempotent."""
        ...

    async def ping(self) -> None:
        """Raise DatabaseUnavailableError unless the store answers now."""
        ...

    # -- submit and read -------------------------------------------------------------------

    async def insert(self, task: Task) -> Task:
        """Store a new task and return it.

        When ``task.idempotency_key`` is set and a task with that key already exists, store
        nothing and return the existing task (concurrent inserts with one key yield one task).
        Likewise when ``task.unique_key`` is set and a pending or running task of the same
        project holds it: the active task is returned (enforced by the store, atomically
        across instances); once that task ends, the key is free again.
        """
        ...

    async def insert_many(self, tasks: Sequence[Task]) -> builtins.list[Task]:
        """Store new tasks in one round trip; return them in order, each as :meth:`insert`
        would return it: a task whose idempotency key or id is taken (by a stored task, or by
        an earlier task of the same batch) is not written and the holder is returned instead.

        Not atomic: when it raises (DatabaseUnavailableError…), some tasks may be stored;
        inserting the same tasks again is safe (the ids and keys deduplicate). An empty batch
        makes no round trip.
        """
        ...

    async def get(self, task_id: str) -> Task:
        """The task, or TaskNotFoundError."""
        ...

    async def expires_at(self, task_id: str) -> datetime | None:
        """When retention will remove the task (None: never, e.g. while it is active, or without
        retention). TaskNotFoundError when there is no such task."""
        ...

    async def list(self, query: TaskFilter, *, offset: int, limit: int) -> TaskPage:
        """Matching tasks, newest ``created_at`` first (ties by id), and the total count."""
        ...

    async def count_by_status(self, query: TaskFilter | None = None) -> Mapping[TaskStatus, int]:
        """Number of tasks in each status (every status present, zeros included)."""
        ...

    async def stats(
        self,
        *,
        since: datetime,
        until: datetime,
        types: Collection[str] | None = None,
        project_ids: Collection[str] | None = None,
    ) -> TaskStats:
        """Statistics of the tasks created in ``[since, until)`` (of ``types``, and of
        ``project_ids``, when given; None means any):
        counts by type and status, and the duration (count, mean, p50, p95) of the completed
        ones, by the rules of :mod:`cam_tasks.domain.stats`. Computed where the tasks are
        (an aggregation in MongoDB), never by loading them. ValueError unless since < until.
        """
        ...

    # -- the worker side ----------------------------------------------------------------------

    async def claim(
        self,
        *,
        types: Collection[str],
        owner: str,
        now: datetime,
        lease_s: float,
        order: ClaimOrder = "priority",
        queue: str = DEFAULT_QUEUE,
        exclude_keys: Collection[str] = (),
    ) -> Task | None:
        """Atomically take the best due pending task of ``queue`` of one of ``types``, or None,
        passing over tasks whose ``concurrency_key`` is one of ``exclude_keys`` (full keys).

        Due: ``run_at <= now``. Best, by ``order``: ``"priority"``: highest ``priority``, then
        earliest ``run_at``, then earliest ``created_at``, then id; ``"age"``: earliest
        ``run_at``, then earliest ``created_at``, then id, whatever the priority (the oldest
        due task). ValueError for another ``order``. The task becomes running with ``owner``,
        ``lease_until = now + lease_s``, ``started_at = now``, ``attempts + 1``,
        ``cancel_requested = False`` and its progress reset for the new attempt
        (progress 0, message "", step/total_steps None). Never returns one task to two callers.
        """
        ...

    async def claim_many(
        self,
        *,
        types: Collection[str],
        owner: str,
        now: datetime,
        lease_s: float,
        limit: int,
        order: ClaimOrder = "priority",
        queue: str = DEFAULT_QUEUE,
        exclude_keys: Collection[str] = (),
        key_room: Callable[[str], int | None] | None = None,
    ) -> builtins.list[Task]:
        """Up to ``limit`` (>= 1) tasks, best first, each taken as :meth:`claim` takes one:
        what ``limit`` claims one after another would return, in as few round trips as the
        store allows (MongoDB: two, three when another claimer took some of the candidates).
        Never returns one task to two callers; the same ``now`` stamps them all.

        ``key_room(key)``: how many more tasks of a concurrency key may run now (None: no
        limit); a batch takes no more of a key than that, passing over the rest."""
        ...

    async def unclaim(self, lease: Lease, *, now: datetime) -> Task:
        """Undo a claim before its task started (its concurrency key turned out full): running
        → pending, ``attempts - 1``, no owner, lease or ``started_at``, no history record.
        Fenced: TaskLostError."""
        ...

    async def next_run_at(
        self, *, types: Collection[str], queues: Collection[str] | None = None
    ) -> datetime | None:
        """Earliest ``run_at`` of a pending task of one of ``types`` (in one of ``queues`` when
        given), due or not, or None."""
        ...

    async def heartbeat(
        self, lease: Lease, *, now: datetime, lease_s: float, progress: Progress | None
    ) -> bool:
        """Renew the lease to ``now + lease_s`` and write ``progress`` when given.

        Returns ``cancel_requested``. Fenced: TaskLostError when the lease is no longer held.
        """
        ...

    async def complete(
        self, lease: Lease, *, now: datetime, result: Any, progress: Progress | None = None
    ) -> Task:
        """running → completed with ``result``, progress 100 (``progress`` supplies the final
        message and steps, so the last report is never lost). Fenced."""
        ...

    async def complete_many(
        self, completions: Sequence[Completion]
    ) -> builtins.list[Task | TaskLostError]:
        """What :meth:`complete` does to each, in as few round trips as the store allows
        (MongoDB: one bulk write; a read and single writes only for those it did not match).
        Answers in ``completions``' order: the task as written, or the TaskLostError of a lost
        lease. Each write is fenced on its own; one lost lease never stops the others."""
        ...

    async def fail(
        self, lease: Lease, *, now: datetime, error: TaskError, progress: Progress | None = None
    ) -> Task:
        """running → failed with ``error`` (and the last ``progress`` when given). Fenced."""
        ...

    async def retry_later(
        self, lease: Lease, *, now: datetime, run_at: datetime, error: TaskError
    ) -> Task:
        """running → pending, due at ``run_at``; ``error`` recorded as the last error. Fenced.

        When a cancel was requested (``cancel_requested``), the task ends cancelled instead, as
        :meth:`acknowledge_cancel` would end it: a pending cancel request is never dropped.
        """
        ...

    async def release(self, lease: Lease, *, now: datetime) -> Task:
        """running → pending due now, giving the attempt back (``attempts - 1``). Fenced.

        For a graceful stop: the work was interrupted by us, not by the task. When a cancel was
        requested, the task ends cancelled instead (as in :meth:`retry_later`).
        """
        ...

    async def acknowledge_cancel(
        self,
        lease: Lease,
        *,
        now: datetime,
        result: Any = None,
        progress: Progress | None = None,
    ) -> Task:
        """running → cancelled, keeping ``result`` (partial work) and the last ``progress`` when
        given. Fenced."""
        ...

    async def rescue_expired(self, *, now: datetime, limit: int = 100) -> builtins.list[Task]:
        """Return running tasks whose ``lease_until < now`` to pending, or to failed with error
        ``lease_expired`` when no attempt remains, or to cancelled (as :meth:`acknowledge_cancel`
        would) when a cancel was requested. Each update repeats the whole predicate
        (running, same owner and attempt, lease still expired), so a task that finished or was
        renewed between read and write is never overwritten. Safe when many processes sweep.
        Returns the tasks it changed, as they are after the change.
        """
        ...

    # -- operator actions -----------------------------------------------------------------

    async def request_cancel(self, task_id: str, *, now: datetime) -> Task:
        """pending → cancelled at once; running → ``cancel_requested = True`` (still running).

        TaskNotFoundError, or IllegalTransitionError for a finished task.
        """
        ...

    async def retry(self, task_id: str, *, now: datetime) -> Task:
        """failed/cancelled → pending due now, as fresh: attempts 0, no result/error/progress,
        no started/completed time (``history`` is kept). IllegalTransitionError otherwise;
        ActiveTaskExistsError while another active task holds its ``unique_key``."""
        ...

    async def delete(self, task_id: str) -> None:
        """Delete a finished task. IllegalTransitionError while pending or running."""
        ...

    # -- bulk operator actions and per-queue counts ----------------------------------------

    async def retry_many(self, query: TaskFilter, *, now: datetime) -> int:
        """:meth:`retry` every failed/cancelled task of ``query`` (other statuses are left
        alone) in one write; the number retried. Not atomic across tasks: each task is changed
        at most once, and one that moved on since is not touched."""
        ...

    async def cancel_many(self, query: TaskFilter, *, now: datetime) -> int:
        """:meth:`request_cancel` every active task of ``query``: pending ones cancelled at once
        (one write), running ones not yet asked to stop flagged ``cancel_requested`` (one
        write); the number of tasks changed. Finished tasks are left alone."""
        ...

    async def delete_many(self, query: TaskFilter) -> int:
        """Delete every finished task of ``query`` (active ones are left alone) in one write;
        the number deleted."""
        ...

    async def count_by_queue(
        self, query: TaskFilter | None = None
    ) -> dict[str, dict[TaskStatus, int]]:
        """``queue -> status -> count`` of the tasks of ``query`` (one read; every status
        present for each queue listed, zeros included; queues without a task are absent)."""
        ...


class AssetInventory(Protocol):
    """The ``assets`` collection: what the last sync saw of each (provider, account, region,
    type) scope. The diff (added / updated / unchanged / removed) is computed by the caller from
    :meth:`fingerprints`, so that every backend counts the same way."""

    async def initialize(self) -> None:
        """Create indexes (idempotent)."""
        ...

    async def fingerprints(self, scope: AssetScope) -> dict[str, str]:
        """``asset_id -> fingerprint`` of every asset stored in ``scope`` (one query)."""
        ...

    async def write(
        self,
        scope: AssetScope,
        *,
        upserts: Sequence[Asset],
        removals: Collection[str],
        now: datetime,
        sync: AssetSync | None = None,
    ) -> None:
        """Insert or replace ``upserts`` and delete ``removals`` (asset ids) in ``scope``, in
        one bulk round trip. Upserted assets get ``synced_at = now``; with ``sync``, every
        asset left in the scope (unchanged ones too) records it as its ``last_sync``."""
        ...

    async def find(
        self,
        *,
        provider: str | None = None,
        account_id: str | None = None,
        region: str | None = None,
        asset_type: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[builtins.list[Asset], int]:
        """Stored assets matching the criteria, ordered by (region, type, id), and the total."""
        ...

    async def search(
        self,
        query: AssetFilter,
        *,
        sort: AssetSort = "region",
        descending: bool = False,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[builtins.list[StoredAsset], int]:
        """A page of the assets ``query`` selects, ordered by ``sort`` (ties by provider,
        account, region, type, id, ascending), and how many it selects in all. ``limit=0``
        returns only the total; ValueError for a negative offset or limit."""
        ...

    async def summary(self, query: AssetFilter) -> AssetSummary:
        """Counts of the assets ``query`` selects by provider, account, region and type, and
        the most recent ``last_sync`` among them."""
        ...


class ScheduleRepository(Protocol):
    """Where schedules live. Errors: ScheduleNotFoundError / ScheduleExistsError as documented,
    DatabaseUnavailableError when the store cannot be reached (driver errors never escape).

    Every write is one atomic conditional update. Two conditions carry the scheduling
    guarantees:

    - a **configuration write** (:meth:`replace`) matches the ``revision`` its caller read and
      increments it: a change computed from a stale read matches nothing;
    - a **fire claim** (:meth:`claim_fire`) matches ``{name, active: true, revision,
      next_run_at: T, firing_at: null}`` and moves ``next_run_at`` past ``T`` while recording
      ``firing_at = T``: of any number of racing schedulers exactly one wins the slot ``T``,
      and none wins a slot computed from a configuration that changed meanwhile.
    """

    async def initialize(self) -> None:
        """Create indexes (idempotent). Call once before use."""
        ...

    async def close(self) -> None:
        """Release what the repository owns (not a database handle it was given). Idempotent."""
        ...

    async def insert(self, schedule: Schedule) -> Schedule:
        """Store a new schedule; ScheduleExistsError when the name is taken (of concurrent
        inserts with one name exactly one succeeds)."""
        ...

    async def get(self, name: str) -> Schedule:
        """The schedule, or ScheduleNotFoundError."""
        ...

    async def list(
        self, *, active: bool | None = None, offset: int = 0, limit: int = 100
    ) -> tuple[builtins.list[Schedule], int]:
        """One page of schedules ordered by name (``active`` filters when given) and the total.
        ValueError for a negative offset or limit."""
        ...

    async def replace(self, schedule: Schedule, *, revision: int) -> Schedule | None:
        """Write the configuration of ``schedule`` (expression, timezone, type, params,
        priority, active, next_run_at, updated_at) and ``revision + 1``, if the stored revision
        is still ``revision``. Runtime state (last_*, firing_at) is left alone.

        Returns the stored schedule after the write; None when the revision moved (re-read and
        try again); ScheduleNotFoundError when the schedule is gone.
        """
        ...

    async def delete(self, name: str) -> None:
        """Delete the schedule; ScheduleNotFoundError when there is none."""
        ...

    # -- the scheduler's side -------------------------------------------------------------------

    async def due(
        self, *, now: datetime, types: Collection[str] | None = None, limit: int = 100
    ) -> builtins.list[Schedule]:
        """Active schedules with ``next_run_at <= now`` (of one of ``types`` when given),
        earliest first."""
        ...

    async def firing(
        self, *, types: Collection[str] | None = None, limit: int = 100
    ) -> builtins.list[Schedule]:
        """Schedules with a claimed fire whose task is not recorded (``firing_at`` set), of one
        of ``types`` when given."""
        ...

    async def next_run_at(self, *, types: Collection[str] | None = None) -> datetime | None:
        """The earliest ``next_run_at`` of an active schedule (of one of ``types`` when given),
        or None."""
        ...

    async def claim_fire(
        self,
        name: str,
        *,
        revision: int,
        fire_at: datetime,
        next_run_at: datetime | None,
        now: datetime,
    ) -> Schedule | None:
        """Claim the slot ``fire_at``: atomically, if the schedule is active, at ``revision``,
        due at ``fire_at`` and has no fire pending, set ``next_run_at``, ``firing_at = fire_at``
        and ``last_run_at = now``. Returns the schedule after the claim, or None when any
        condition failed (another scheduler won, or the schedule changed or vanished)."""
        ...

    async def skip_fire(
        self, name: str, *, revision: int, fire_at: datetime, next_run_at: datetime | None
    ) -> bool:
        """Like :meth:`claim_fire` without firing: only move ``next_run_at`` on (a missed slot
        under the "skip" misfire policy). True when this call moved it."""
        ...

    async def finish_fire(
        self, name: str, *, fire_at: datetime, task_id: str | None, error: str | None
    ) -> bool:
        """Record the outcome of the fire claimed for ``fire_at``: clear ``firing_at`` and set
        ``last_task_id`` and ``last_error``, if ``firing_at`` is still ``fire_at``. True when
        this call recorded it (False: already recorded by another scheduler, or deleted)."""
        ...

    async def record_run(self, name: str, *, now: datetime, task_id: str) -> Schedule:
        """Record a task fired outside the timetable (run now): ``last_run_at = now``,
        ``last_task_id``, no ``last_error``; ``next_run_at`` is left alone.
        ScheduleNotFoundError when the schedule is gone."""
        ...


class KeySlotRepository(Protocol):
    """The slots of concurrency keys: at most ``limit`` holders per key, across every instance
    sharing the store. A holder is the :class:`Lease` of the attempt that runs under the key.

    Slots are freed by their holder (:meth:`release`, when the attempt ends or is handed back)
    and, for a process that died, by whoever rescues its tasks; :meth:`holders` lets a claimer
    find holders whose attempt no longer runs (and :meth:`release` them).
    """

    async def initialize(self) -> None:
        """Create indexes (idempotent)."""
        ...

    async def close(self) -> None:
        """Release what the store owns. Idempotent."""
        ...

    async def acquire(self, key: str, *, limit: int, holder: Lease) -> bool:
        """Take a slot of ``key`` for ``holder`` when fewer than ``limit`` are held: one atomic
        write, so racing instances never exceed the limit. True when taken (or already held by
        ``holder``), False when the key is full."""
        ...

    async def acquire_many(self, requests: Sequence[tuple[str, int, Lease]]) -> builtins.list[bool]:
        """:meth:`acquire` of each ``(key, limit, holder)``, in order, in as few round trips as
        the store allows (MongoDB: one bulk write, one update per key, when every key has room
        for all its holders). Answers in ``requests``' order."""
        ...

    async def release(self, key: str, holder: Lease) -> None:
        """Free ``holder``'s slot of ``key`` (nothing when it holds none)."""
        ...

    async def holders(self, key: str) -> builtins.list[Lease]:
        """Who holds slots of ``key`` now."""
        ...

    async def held(self) -> dict[str, int]:
        """How many slots each key with at least one holder has taken (one read)."""


class QueueRepository(Protocol):
    """The stored queue flags every instance honours (collection ``queues``): which queues are
    paused. A queue never paused or resumed has no record and is not paused. Errors:
    DatabaseUnavailableError when the store cannot be reached."""

    async def initialize(self) -> None:
        """Create indexes (idempotent). Call once before use."""
        ...

    async def close(self) -> None:
        """Release what the repository owns (not a database handle it was given). Idempotent."""
        ...

    async def set_paused(self, queue: str, paused: bool, *, now: datetime) -> None:
        """Store whether ``queue`` is paused (an upsert: idempotent, last write wins)."""
        ...

    async def paused(self) -> frozenset[str]:
        """The names of the paused queues, in one read (every dispatcher calls it each poll)."""
        ...
