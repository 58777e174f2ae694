"""The in-process task repository behind ``memory://``: the same contract, nothing persisted.

It keeps frozen :class:`Task` objects by id (finished ones packed small, :mod:`.table`), each
write replacing one by a changed copy, and sorted indexes beside them (:mod:`.indexes`), so
claims, sweeps and list pages cost O(log n) like their MongoDB counterparts. What each write
changes, and which action a request leads to, is decided by the domain
(:mod:`cam_tasks.domain.changes`), so both backends write the same fields; every stored value
goes through the document mapping on the way in, so a task reads back exactly as MongoDB would
give it (UTC millisecond times, copied containers).
"""

from __future__ import annotations

import builtins
import copy
import dataclasses
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from cam_tasks.domain import (
    DEFAULT_QUEUE,
    TRANSITIONS,
    Action,
    ActiveTaskExistsError,
    Clock,
    Lease,
    Progress,
    SystemClock,
    Task,
    TaskError,
    TaskFilter,
    TaskLostError,
    TaskNotFoundError,
    TaskPage,
    TaskStatus,
    check_transition,
    to_millis,
)
from cam_tasks.domain.changes import (
    Change,
    cancel_action,
    cancel_change,
    cancel_flag_change,
    claim_change,
    ending_action,
    finish_change,
    heartbeat_change,
    rescue_action,
    retry_change,
    unclaim_change,
)
from cam_tasks.domain.lifecycle import Initializable
from cam_tasks.domain.stats import TaskStats, stats_of_tasks
from cam_tasks.repository.batches import KeyRoom, complete_each
from cam_tasks.repository.documents import (
    active_key_of,
    build_task,
    changed_task,
    check_page,
    task_from_document,
    task_to_document,
)
from cam_tasks.repository.memory.indexes import MemoryIndexes
from cam_tasks.repository.memory.table import TaskTable
from cam_tasks.repository.protocol import ClaimOrder, Completion

__all__ = ["MemoryTaskRepository"]

logger = logging.getLogger(__name__)

_RUNNING = frozenset({TaskStatus.RUNNING})
_SYSTEM_CLOCK = SystemClock()  # stateless: one shared default


def _residual(query: TaskFilter, tasks: Mapping[str, Task]) -> Callable[[str], bool] | None:
    """The criteria no sorted index serves, as a check of one task id (None: there are none)."""
    created_by, project_ids, since = query.created_by, query.project_ids, query.updated_since
    queues, error_types = query.queues, query.error_types
    after, before = query.finished_after, query.finished_before
    born_after, born_before = query.created_after, query.created_before
    criteria = (created_by, project_ids, since, queues, error_types, after, before)
    if all(value is None for value in (*criteria, born_after, born_before)):
        return None
    floor = None if since is None else to_millis(since)
    after = None if after is None else to_millis(after)
    before = None if before is None else to_millis(before)
    born_after = None if born_after is None else to_millis(born_after)
    born_before = None if born_before is None else to_millis(born_before)

    def finished_in(completed_at: datetime | None) -> bool:
        if after is None and before is None:
            return True
        return (
            completed_at is not None
            and (after is None or completed_at >= after)
            and (before is None or completed_at < before)
        )

    def matches(task_id: str) -> bool:
        task = tasks[task_id]
        return (
            (created_by is None or task.created_by == created_by)
            and (project_ids is None or task.project_id in project_ids)
            and (floor is None or task.updated_at >= floor)
            and (queues is None or task.queue in queues)
            and (error_types is None or (task.error is not None and task.error.type in error_types))
            and finished_in(task.completed_at)
            and (born_after is None or task.created_at >= born_after)
            and (born_before is None or task.created_at < born_before)
        )

    return matches


class MemoryTaskRepository(Initializable):
    """Tasks in this process only: every task is lost when it stops (logged at initialize()).

    ``retention_s``: finished tasks are removed ``retention_s`` after they finished, judged by
    ``clock`` when any method next runs (active tasks never expire).

    Coroutine-safe without a lock: no method awaits anything, so each one does its whole
    read-modify-write before another coroutine of the event loop can run. Not thread-safe: use
    it from one event loop.
    """

    def __init__(self, *, retention_s: float | None = None, clock: Clock = _SYSTEM_CLOCK) -> None:
        if retention_s is not None and retention_s <= 0:
            raise ValueError("retention_s must be > 0 (or None to keep finished tasks)")
        self._retention_s = retention_s
        self._clock = clock
        self._warned = False
        self._tasks = TaskTable()  # finished tasks packed small (most of the memory)
        self._by_key: dict[str, str] = {}  # idempotency key -> task id
        self._active: dict[str, str] = {}  # active unique key (active_key_of) -> task id
        self._indexes = MemoryIndexes()

    # -- lifecycle ----------------------------------------------------------------------------

    async def initialize(self) -> None:
        """Nothing to create; warns (once) that nothing survives a restart."""
        if not self._warned:
            self._warned = True
            logger.warning(
                "storage is memory://: tasks are kept in this process only and every task is "
                "lost when it stops (use a mongodb:// URI to keep them)"
            )

    async def close(self) -> None:
        """Nothing to release; the tasks stay readable. Idempotent."""

    async def ping(self) -> None:
        """Always answers: the store is this process."""

    # -- state changes ------------------------------------------------------------------------

    def _apply(self, task: Task, change: Change) -> Task:
        if "result" in change.fields:  # as a database would copy it
            fields = {**change.fields, "result": copy.deepcopy(change.fields["result"])}
            change = dataclasses.replace(change, fields=fields)
        updated = changed_task(task, change)
        self._indexes.replace(task, updated)
        self._tasks[task.id] = updated
        self._track_active_key(task, updated)
        if change.touches_expiry:
            self._indexes.set_expiry(task.id, change.expire_at)
        return updated

    def _track_active_key(self, old: Task | None, new: Task | None) -> None:
        """Keep ``_active`` equal to what the Mongo store's unique ``active_key`` index holds."""
        if (old is None or old.unique_key is None) and (new is None or new.unique_key is None):
            return  # the usual case, on every write: no key to track
        after = None if new is None else active_key_of(new)
        if old is not None:
            before = active_key_of(old)
            if before is not None and before != after and self._active.get(before) == old.id:
                del self._active[before]
        if after is not None and new is not None:
            self._active[after] = new.id

    def _remove(self, task: Task) -> None:
        self._track_active_key(task, None)
        self._indexes.remove(task)
        if task.idempotency_key is not None and self._by_key.get(task.idempotency_key) == task.id:
            del self._by_key[task.idempotency_key]
        del self._tasks[task.id]

    def _prune(self) -> None:
        """Drop finished tasks whose retention has passed (only they ever carry an expiry).

        Runs first in every method, so expiry is judged by ``clock`` whenever the store is used.
        """
        now = self._clock.now()
        while (task_id := self._indexes.first_expired(now)) is not None:
            self._remove(self._tasks[task_id])

    # -- submit and read ----------------------------------------------------------------------

    async def insert(self, task: Task) -> Task:
        """Store ``task``. Idempotent by ``idempotency_key`` (when set) and by id: when either is
        already taken, the stored task is returned and nothing is written."""
        self._prune()
        return self._insert(task)

    async def insert_many(self, tasks: Sequence[Task]) -> builtins.list[Task]:
        """:meth:`insert` of each task in order (a later duplicate of a key or id in the batch
        gets the earlier task), with one retention sweep for the batch."""
        self._prune()
        return [self._insert(task) for task in tasks]

    def _insert(self, task: Task) -> Task:
        if task.idempotency_key is not None and task.idempotency_key in self._by_key:
            return self._tasks[self._by_key[task.idempotency_key]]
        active_key = active_key_of(task)
        if active_key is not None and active_key in self._active:
            return self._tasks[self._active[active_key]]
        if task.id in self._tasks:
            return self._tasks[task.id]
        if _in_stored_form(task):  # the usual case (a service's new task): copy, no round trip
            values = dict(task.__dict__)
            values["params"] = copy.deepcopy(values["params"])
            values["result"] = copy.deepcopy(values["result"])
            stored = build_task(values)
        else:  # as a database would keep it: times to the millisecond in UTC, fresh containers
            document = task_to_document(task)
            document["params"] = copy.deepcopy(document["params"])
            document["result"] = copy.deepcopy(document["result"])
            stored = task_from_document(document)
        self._tasks[stored.id] = stored
        self._indexes.add(stored)
        if stored.idempotency_key is not None:
            self._by_key[stored.idempotency_key] = stored.id
        self._track_active_key(None, stored)
        return stored

    def _get(self, task_id: str) -> Task:
        self._prune()
        task = self._tasks.get(task_id)
        if task is None:
            raise TaskNotFoundError(task_id)
        return task

    async def get(self, task_id: str) -> Task:
        return self._get(task_id)

    async def expires_at(self, task_id: str) -> datetime | None:
        self._get(task_id)
        return self._indexes.expiry_of(task_id)

    def _page(self, query: TaskFilter, offset: int, limit: int) -> tuple[list[Task], int]:
        matches = _residual(query, self._tasks)
        ids, total = self._indexes.page(query, offset, limit, matches)
        return [self._tasks[task_id] for task_id in ids], total

    async def list(self, query: TaskFilter, *, offset: int, limit: int) -> TaskPage:
        """Newest first. ValueError for a bad page."""
        check_page(offset, limit)
        self._prune()
        tasks, total = self._page(query, offset, limit)
        return TaskPage(tasks=tasks, total=total)

    async def count_by_status(self, query: TaskFilter | None = None) -> Mapping[TaskStatus, int]:
        self._prune()
        counts = dict.fromkeys(TaskStatus, 0)
        for status in TaskStatus:
            if query is None:
                counts[status] = self._indexes.count_status(status)
            elif query.statuses is None or status in query.statuses:
                narrowed = query.model_copy(update={"statuses": frozenset({status})})
                counts[status] = self._page(narrowed, 0, 0)[1]
        return counts

    async def stats(
        self,
        *,
        since: datetime,
        until: datetime,
        types: Collection[str] | None = None,
        project_ids: Collection[str] | None = None,
    ) -> TaskStats:
        """One pass over the stored tasks (this store is the database). ValueError unless
        since < until."""
        self._prune()
        return stats_of_tasks(
            self._tasks.values(), since=since, until=until, types=types, project_ids=project_ids
        )

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
        excluded = frozenset(exclude_keys)
        return self._claim_one(
            types,
            owner,
            now,
            lease_s,
            order,
            queue,
            (lambda key: key in excluded) if excluded else None,
        )

    def _claim_one(
        self,
        types: Collection[str],
        owner: str,
        now: datetime,
        lease_s: float,
        order: ClaimOrder,
        queue: str,
        passed_over: Callable[[str], bool] | None,
    ) -> Task | None:
        """The best due task of ``queue`` whose concurrency key ``passed_over`` does not pass
        over, claimed; None when there is none."""
        self._prune()
        skip = None
        if passed_over is not None:
            tasks = self._tasks

            def skip(task_id: str) -> bool:
                key = tasks[task_id].concurrency_key
                return key is not None and passed_over(key)

        task_id = self._indexes.best_due(types, to_millis(now), order, queue=queue, skip=skip)
        if task_id is None:
            return None
        change = claim_change(owner=owner, now=now, lease_s=lease_s)
        return self._apply(self._tasks[task_id], change)

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
        if key_room is None:
            return await self._claim_each(
                types, owner, now, lease_s, limit, order, queue, exclude_keys
            )
        claimed: builtins.list[Task] = []
        excluded, room = frozenset(exclude_keys), KeyRoom(key_room)

        def passed_over(key: str) -> bool:
            return key in excluded or not room.has_room(key)

        while len(claimed) < limit:  # no round trip to save: one claim after another
            task = self._claim_one(types, owner, now, lease_s, order, queue, passed_over)
            if task is None:
                break
            claimed.append(task)
            if task.concurrency_key is not None:
                room.take(task.concurrency_key)
        return claimed

    async def _claim_each(
        self,
        types: Collection[str],
        owner: str,
        now: datetime,
        lease_s: float,
        limit: int,
        order: ClaimOrder,
        queue: str,
        exclude_keys: Collection[str],
    ) -> builtins.list[Task]:
        claimed: builtins.list[Task] = []
        while len(claimed) < limit:
            task = await self.claim(
                types=types,
                owner=owner,
                now=now,
                lease_s=lease_s,
                order=order,
                queue=queue,
                exclude_keys=exclude_keys,
            )
            if task is None:
                break
            claimed.append(task)
        return claimed

    async def unclaim(self, lease: Lease, *, now: datetime) -> Task:
        task = self._fenced(lease, TRANSITIONS[Action.UNCLAIM].sources)
        return self._apply(task, unclaim_change(now=now))

    async def next_run_at(
        self, *, types: Collection[str], queues: Collection[str] | None = None
    ) -> datetime | None:
        self._prune()
        return self._indexes.next_run_at(types, queues)

    def _fenced(self, lease: Lease, statuses: Collection[TaskStatus]) -> Task:
        self._prune()
        task = self._tasks.get(lease.task_id)
        if (
            task is None
            or task.owner != lease.owner
            or task.attempts != lease.attempt
            or task.status not in statuses
            or (lease.started_at is not None and task.started_at != lease.started_at)
        ):
            raise TaskLostError(lease.task_id, lease.owner, lease.attempt)
        return task

    async def heartbeat(
        self, lease: Lease, *, now: datetime, lease_s: float, progress: Progress | None
    ) -> bool:
        task = self._fenced(lease, _RUNNING)
        change = heartbeat_change(now=now, lease_s=lease_s, progress=progress)
        return self._apply(task, change).cancel_requested

    def _finish(self, lease: Lease, action: Action, now: datetime, **values: Any) -> Task:
        task = self._fenced(lease, TRANSITIONS[action].sources)
        ending = ending_action(action, cancel_requested=task.cancel_requested)
        if ending is not action:
            action, values = ending, {}
        change = finish_change(
            action,
            lease,
            started_at=task.started_at,
            now=now,
            retention_s=self._retention_s,
            **values,
        )
        return self._apply(task, change)

    async def complete_many(
        self, completions: Sequence[Completion]
    ) -> builtins.list[Task | TaskLostError]:
        return await complete_each(self, completions)  # no round trip to save

    async def complete(
        self, lease: Lease, *, now: datetime, result: Any, progress: Progress | None = None
    ) -> Task:
        """running → completed with ``result``, progress 100; the last error is cleared (it stays
        in ``history``). Fenced: TaskLostError."""
        return self._finish(lease, Action.COMPLETE, now, result=result, progress=progress)

    async def fail(
        self, lease: Lease, *, now: datetime, error: TaskError, progress: Progress | None = None
    ) -> Task:
        return self._finish(lease, Action.FAIL, now, error=error, progress=progress)

    async def retry_later(
        self, lease: Lease, *, now: datetime, run_at: datetime, error: TaskError
    ) -> Task:
        return self._finish(lease, Action.RETRY_LATER, now, error=error, run_at=run_at)

    async def release(self, lease: Lease, *, now: datetime) -> Task:
        return self._finish(lease, Action.RELEASE, now)

    async def acknowledge_cancel(
        self,
        lease: Lease,
        *,
        now: datetime,
        result: Any = None,
        progress: Progress | None = None,
    ) -> Task:
        return self._finish(lease, Action.ACKNOWLEDGE_CANCEL, now, result=result, progress=progress)

    async def rescue_expired(self, *, now: datetime, limit: int = 100) -> builtins.list[Task]:
        """Oldest expired leases first. A task is failed (``lease_expired``) instead of returned
        to pending when its ``attempts`` reached ``max_retries + 1``, and cancelled when a cancel
        was requested (its owner died before it could acknowledge)."""
        self._prune()
        now = to_millis(now)
        if limit <= 0:
            return []
        expired = self._indexes.expired_leases(now, limit)
        rescued: list[Task] = []
        for task_id in expired:
            task = self._tasks[task_id]
            action = rescue_action(
                attempts=task.attempts,
                max_attempts=task.max_attempts,
                cancel_requested=task.cancel_requested,
            )
            lease = Lease(task.id, task.owner or "", task.attempts)
            change = finish_change(
                action, lease, started_at=task.started_at, now=now, retention_s=self._retention_s
            )
            rescued.append(self._apply(task, change))
        return rescued

    # -- operator actions -----------------------------------------------------------------

    async def request_cancel(self, task_id: str, *, now: datetime) -> Task:
        task = self._get(task_id)
        if cancel_action(task_id, task.status) is Action.CANCEL:
            return self._apply(task, cancel_change(now=now, retention_s=self._retention_s))
        return self._apply(task, cancel_flag_change(now=now))

    async def retry(self, task_id: str, *, now: datetime) -> Task:
        task = self._get(task_id)
        check_transition(task_id, task.status, Action.RETRY)
        active_key = active_key_of(task.model_copy(update={"status": TaskStatus.PENDING}))
        if active_key is not None and active_key in self._active:
            raise ActiveTaskExistsError(task_id, active_task_id=self._active[active_key])
        return self._apply(task, retry_change(now=now))

    async def delete(self, task_id: str) -> None:
        task = self._get(task_id)
        check_transition(task_id, task.status, Action.DELETE)
        self._remove(task)

    # -- bulk operator actions and per-queue counts ---------------------------------------------

    def _matching(self, query: TaskFilter, action: Action) -> builtins.list[Task]:
        """The tasks of ``query`` in the legal source statuses of ``action``."""
        self._prune()
        narrowed = query.within(TRANSITIONS[action].sources)
        if narrowed is None:
            return []
        ids = self._indexes.ids(narrowed, _residual(narrowed, self._tasks))
        return [self._tasks[task_id] for task_id in ids]

    async def retry_many(self, query: TaskFilter, *, now: datetime) -> int:
        change = retry_change(now=now)
        count = 0
        for task in self._matching(query, Action.RETRY):
            key = active_key_of(task.model_copy(update={"status": TaskStatus.PENDING}))
            if key is not None and key in self._active:
                continue  # another active task holds its unique key: left as it is
            self._apply(task, change)
            count += 1
        return count

    async def cancel_many(self, query: TaskFilter, *, now: datetime) -> int:
        pending = self._matching(query, Action.CANCEL)
        cancel = cancel_change(now=now, retention_s=self._retention_s)
        for task in pending:
            self._apply(task, cancel)
        # A running task already asked to stop is not asked again (nor counted twice).
        running = [
            t for t in self._matching(query, Action.REQUEST_CANCEL) if not t.cancel_requested
        ]
        flag = cancel_flag_change(now=now)
        for task in running:
            self._apply(task, flag)
        return len(pending) + len(running)

    async def delete_many(self, query: TaskFilter) -> int:
        tasks = self._matching(query, Action.DELETE)
        for task in tasks:
            self._remove(task)
        return len(tasks)

    async def count_by_queue(
        self, query: TaskFilter | None = None
    ) -> dict[str, dict[TaskStatus, int]]:
        """One pass over the tasks of ``query``'s statuses (the status lists are the index)."""
        self._prune()
        query = query or TaskFilter()
        counts: dict[str, dict[TaskStatus, int]] = {}
        for task_id in self._indexes.ids(query, _residual(query, self._tasks)):
            task = self._tasks[task_id]
            counts.setdefault(task.queue, dict.fromkeys(TaskStatus, 0))[task.status] += 1
        return counts


_INSTANTS: Final = (
    "run_at",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
    "lease_until",
)


def _in_stored_form(task: Task) -> bool:
    """Whether ``task`` already reads as the store would give it back: every instant UTC to the
    millisecond (what every clock of this package gives), no history, a validated model's
    types. Then storing it needs no encode/decode round trip."""
    values = task.__dict__
    for name in _INSTANTS:
        instant = values[name]
        if instant is not None and (instant.tzinfo is not UTC or instant.microsecond % 1000):
            return False
    return (
        not task.history
        and isinstance(task.status, TaskStatus)
        and type(task.priority) is int
        and type(task.progress) is float
    )
