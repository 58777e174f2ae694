"""The MongoDB task repository: the TaskRepository contract as atomic conditional updates.

Works unchanged on a PyMongo async database (``AsyncMongoClient``, the default), a Motor
database, or a mongomock-motor database: it uses only the collection API they share, and
:func:`cam_tasks.repository.mongo.driver.aggregate` where they differ. Every driver call runs
inside :func:`~cam_tasks.repository.mongo.driver.unavailable_as_domain_error`, so connectivity
failures leave as :class:`DatabaseUnavailableError` and nothing else of the driver escapes on
purpose.

What each write changes, and which action a request leads to, is decided by the domain
(:mod:`cam_tasks.domain.changes`); this class turns those decisions into conditional updates.
Statistics are aggregated in :mod:`cam_tasks.repository.mongo.stats`.

Why the writes look the way they do:

- The claim is one ``find_one_and_update`` with a sort: the server picks and takes the task in
  one step, so two claimers can never get the same task.
- Every status change filters on ``TRANSITIONS[action].sources``: a change the table forbids
  matches nothing, even when two processes race.
- Every write after the claim is fenced on ``{_id, owner, attempts, status}``: a worker whose
  task was rescued, cancelled or deleted matches nothing and gets TaskLostError.
- A finishing write first reads the attempt's ``started_at`` (for its history record), then
  writes under the same fence. Nothing can change ``started_at`` while the fence holds, so the
  record is exact; a single round trip would need an update pipeline, which mongomock silently
  evaluates wrongly (it stores ``"$started_at"`` as a literal string).
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from cam_tasks.domain import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_QUEUE,
    TRANSITIONS,
    Action,
    ActiveTaskExistsError,
    DatabaseUnavailableError,
    IllegalTransitionError,
    Lease,
    Progress,
    StoreError,
    Task,
    TaskError,
    TaskFilter,
    TaskLostError,
    TaskNotFoundError,
    TaskPage,
    TaskStatus,
    to_millis,
    utc,
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
from cam_tasks.repository.batches import KeyRoom, complete_each
from cam_tasks.repository.documents import (
    ACTIVE_KEY,
    active_key_of,
    changed_task,
    check_page,
    task_from_document,
    task_to_document,
)
from cam_tasks.repository.mongo import driver
from cam_tasks.repository.mongo.indexes import create_task_indexes
from cam_tasks.repository.mongo.queries import encode_change, filter_to_query, one_of, sources_of
from cam_tasks.repository.mongo.stats import MongoTaskStats
from cam_tasks.repository.protocol import ClaimOrder, Completion

__all__ = ["MongoTaskRepository"]

logger = logging.getLogger(__name__)

_AGE_ORDER = [("run_at", 1), ("created_at", 1), ("_id", 1)]
_CLAIM_ORDERS: dict[str, list[tuple[str, int]]] = {
    "priority": [("priority", -1), *_AGE_ORDER],  # served by the `claim_queue` index
    "age": _AGE_ORDER,  # served by the `claim_queue_age` index
}
_ONE_MS = timedelta(milliseconds=1)
_NEWEST_FIRST = [("created_at", -1), ("_id", -1)]
_RUNNING = frozenset({TaskStatus.RUNNING})
# Operator actions retry their conditional write when a concurrent change moved the task back
# into a legal source status between the write and the read that explains why it missed.
_OPERATOR_ROUNDS = 3
_DUPLICATE_KEY = 11000


_sources = sources_of


#: With key limits, a claim reads this many candidates per task wanted (tasks of a key without
#: room are passed over).
_KEYED_READ_FACTOR: Final = 4


def _written_by(task: Task, completion: Completion) -> bool:
    """Whether ``task`` is as ``completion`` left it: completed at its instant, its attempt the
    last one recorded."""
    lease, record = completion.lease, task.history[-1] if task.history else None
    return (
        task.status is TaskStatus.COMPLETED
        and record is not None
        and (record.attempt, record.owner, record.ended_at)
        == (lease.attempt, lease.owner, to_millis(completion.now))
    )


def _claimable(
    types: Collection[str], *, now: datetime, queue: str, exclude_keys: Collection[str]
) -> dict[str, Any]:
    """What a claim may take: a due pending task of ``queue`` and ``types`` whose key is not
    one of ``exclude_keys``."""
    query: dict[str, Any] = {
        "status": _sources(Action.CLAIM),
        "queue": queue,
        "type": one_of(types),
        # Due: run_at <= now, written `< now + 1 ms` (the same: BSON dates are whole
        # milliseconds) because SecantusDB 0.7 loses the documents exactly at a `$lte`
        # bound when it scans an age index for one type (more keys follow `run_at` there).
        "run_at": {"$lt": to_millis(now) + _ONE_MS},
    }
    if exclude_keys:
        query["concurrency_key"] = {"$nin": sorted(exclude_keys)}
    return query


class MongoTaskRepository(MongoTaskStats, Initializable):
    """Tasks in one MongoDB collection (default ``tasks``).

    ``retention_s``: finished tasks get ``expire_at = completed_at + retention_s`` and the TTL
    index removes them after that; None keeps them forever. Active tasks never expire.
    ``server_percentile``: whether :meth:`stats` may use ``$percentile`` (MongoDB >= 7.0);
    None finds out on first use. All methods are safe to call from many coroutines and
    processes at once.
    """

    def __init__(
        self,
        database: Any,
        *,
        collection_name: str = "tasks",
        retention_s: float | None = None,
        server_percentile: bool | None = None,
    ) -> None:
        if retention_s is not None and retention_s <= 0:
            raise ValueError("retention_s must be > 0 (or None to keep finished tasks)")
        self._database = database
        self._collection_name = collection_name
        self._collection: Any = database[collection_name]
        self._retention_s = retention_s
        self._server_percentile = server_percentile

    # -- lifecycle ----------------------------------------------------------------------------

    async def initialize(self) -> None:
        """Create the indexes (idempotent); on a replica set (or mongos) write with
        ``w="majority"`` from now on, so an acknowledged claim or finish survives a failover."""
        await create_task_indexes(self._collection)
        self._collection = await driver.durable_collection(self._database, self._collection_name)

    async def close(self) -> None:
        """Nothing to release: the database handle belongs to whoever passed it. Idempotent."""

    async def ping(self) -> None:
        async with driver.unavailable_as_domain_error():
            await self._database.command("ping")

    # -- submit and read ----------------------------------------------------------------------

    async def insert(self, task: Task) -> Task:
        """Store ``task``. Idempotent by ``idempotency_key`` (when set) and by id: when either is
        already taken, the stored task is returned and nothing is written."""
        document = task_to_document(task)
        for _ in range(_OPERATOR_ROUNDS):
            try:
                async with driver.unavailable_as_domain_error():
                    await self._collection.insert_one(document)
                return task_from_document(document)
            except DuplicateKeyError:
                existing = await self._find_existing(task)
                if existing is not None:
                    return existing
            # The holder of the key was deleted in between: insert again.
        raise StoreError(f"task {task.id!r}: its id or idempotency key keeps colliding")

    async def insert_many(self, tasks: Sequence[Task]) -> builtins.list[Task]:
        """One unordered ``insert_many``; a task refused for a duplicate id or idempotency key
        is resolved as :meth:`insert` resolves it (the holder is returned)."""
        if not tasks:
            return []
        documents = [task_to_document(task) for task in tasks]
        refused: set[int] = set()
        try:
            async with driver.unavailable_as_domain_error():
                await self._collection.insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            # Translated here, at the boundary: only duplicates are resolved below.
            errors = exc.details.get("writeErrors", [])
            if exc.details.get("writeConcernErrors"):
                raise DatabaseUnavailableError(
                    "the insert was not acknowledged by the required write concern"
                ) from exc
            others = [error for error in errors if error.get("code") != _DUPLICATE_KEY]
            if others:
                first = others[0]
                raise StoreError(
                    f"{len(others)} task(s) refused by the store: {first.get('errmsg', '')}",
                    code=first.get("code"),
                ) from exc
            refused = {int(error["index"]) for error in errors}
        stored = []
        for index, (task, document) in enumerate(zip(tasks, documents, strict=True)):
            if index not in refused:
                stored.append(task_from_document(document))
            else:
                existing = await self._find_existing(task)
                # The holder was deleted in between: insert it alone (which retries).
                stored.append(existing if existing is not None else await self.insert(task))
        return stored

    async def _find_existing(self, task: Task) -> Task | None:
        """The stored task that refused ``task``: the holder of its idempotency key, else the
        active holder of its unique key, else the task with its id."""
        async with driver.unavailable_as_domain_error():
            if task.idempotency_key is not None:
                # `$type: string` repeats the partial filter so the unique index serves this.
                key = {"$type": "string", "$eq": task.idempotency_key}
                document = await self._collection.find_one({"idempotency_key": key})
                if document is not None:
                    return task_from_document(document)
            holder = await self._active_holder(active_key_of(task))
            if holder is not None:
                return holder
            document = await self._collection.find_one({"_id": task.id})
        return None if document is None else task_from_document(document)

    async def _active_holder(self, active_key: str | None) -> Task | None:
        if active_key is None:
            return None
        async with driver.unavailable_as_domain_error():
            document = await self._collection.find_one(
                {ACTIVE_KEY: {"$type": "string", "$eq": active_key}}
            )
        return None if document is None else task_from_document(document)

    async def get(self, task_id: str) -> Task:
        async with driver.unavailable_as_domain_error():
            document = await self._collection.find_one({"_id": task_id})
        if document is None:
            raise TaskNotFoundError(task_id)
        return task_from_document(document)

    async def expires_at(self, task_id: str) -> datetime | None:
        async with driver.unavailable_as_domain_error():
            document = await self._collection.find_one({"_id": task_id}, {"expire_at": True})
        if document is None:
            raise TaskNotFoundError(task_id)
        expire_at = document.get("expire_at")
        return None if expire_at is None else utc(expire_at)

    async def list(self, query: TaskFilter, *, offset: int, limit: int) -> TaskPage:
        """Newest first. The count and the page are two reads: under concurrent writes the
        total may differ from what paging through would find. ValueError for a bad page."""
        check_page(offset, limit)
        mongo_query = filter_to_query(query)
        async with driver.unavailable_as_domain_error():
            total: int = await self._collection.count_documents(mongo_query)
            documents: list[dict[str, Any]] = []
            if limit and offset < total:
                cursor = self._collection.find(mongo_query).sort(_NEWEST_FIRST)
                documents = await cursor.skip(offset).limit(limit).to_list(None)
        return TaskPage(tasks=[task_from_document(d) for d in documents], total=total)

    async def count_by_status(self, query: TaskFilter | None = None) -> Mapping[TaskStatus, int]:
        pipeline = [
            {"$match": filter_to_query(query)},
            {"$group": {"_id": "$status", "count": {"$sum": 1}}},
        ]
        async with driver.unavailable_as_domain_error():
            groups = await driver.aggregate(self._collection, pipeline)
        counts = dict.fromkeys(TaskStatus, 0)
        for group in groups:
            if group["_id"] in TaskStatus.__members__.values():
                counts[TaskStatus(group["_id"])] = int(group["count"])
        return counts

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
        sort = _CLAIM_ORDERS.get(order)
        if sort is None:
            raise ValueError(f"unknown claim order {order!r}")
        if not types:
            return None
        query = _claimable(types, now=now, queue=queue, exclude_keys=exclude_keys)
        update = encode_change(claim_change(owner=owner, now=now, lease_s=lease_s))
        async with driver.unavailable_as_domain_error():
            document = await self._collection.find_one_and_update(
                query, update, sort=sort, return_document=ReturnDocument.AFTER
            )
        return None if document is None else task_from_document(document)

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
        """One read of the best ``limit`` candidates, one ``update_many`` that claims those
        still claimable (the whole predicate again, per document, atomically), and, only when
        another claimer took some in between, one read of the ones this call took (by owner and
        start, which this call's ``now`` makes its own)."""
        sort = _CLAIM_ORDERS.get(order)
        if sort is None:
            raise ValueError(f"unknown claim order {order!r}")
        if not types or limit < 1:
            return []
        if limit == 1:  # one round trip; a key with no room at all is among exclude_keys
            task = await self.claim(
                types=types,
                owner=owner,
                now=now,
                lease_s=lease_s,
                order=order,
                queue=queue,
                exclude_keys=exclude_keys,
            )
            return [] if task is None else [task]
        query = _claimable(types, now=now, queue=queue, exclude_keys=exclude_keys)
        change = claim_change(owner=owner, now=now, lease_s=lease_s)
        claimed: builtins.list[Task] = []
        room = KeyRoom(key_room)
        async with driver.unavailable_as_domain_error():
            # Another claimer may take some candidates between the read and the write: read
            # again for the rest, until the limit or nothing is left (each pass takes at least
            # one task or finds the candidates gone, so contention only costs passes).
            for _ in range(2 * limit + 1):  # a bound: contention alone never ends a claim
                if len(claimed) >= limit:
                    break
                taken = await self._claim_candidates(
                    query, sort, limit - len(claimed), change, room
                )
                if taken is None:
                    break
                claimed += taken
        return claimed

    async def _claim_candidates(
        self, query: dict[str, Any], sort: Any, limit: int, change: Change, room: KeyRoom
    ) -> builtins.list[Task] | None:
        """One pass of :meth:`claim_many`: the tasks it took of the best ``limit`` candidates
        (a key's tasks beyond its room passed over: more are read then, so that they do not
        crowd out the others); None when there were none."""
        read = limit if room.unlimited else limit * _KEYED_READ_FACTOR
        found = await self._collection.find(query, sort=sort, limit=read).to_list()
        if not found:
            return None
        candidates = room.choose(found, limit, key_of=lambda d: d.get("concurrency_key"))
        if not candidates:
            return None
        ids = [document["_id"] for document in candidates]
        written = await self._collection.update_many(
            {**query, "_id": {"$in": ids}}, encode_change(change)
        )
        if written.modified_count == len(ids):
            return [changed_task(task_from_document(d), change) for d in candidates]
        if not written.modified_count:
            return []
        mine = await self._collection.find(
            {
                "_id": {"$in": ids},
                "status": TaskStatus.RUNNING.value,
                "owner": change.fields["owner"],
                "started_at": change.fields["started_at"],
            }
        ).to_list()
        by_id = {document["_id"]: document for document in mine}
        return [task_from_document(by_id[i]) for i in ids if i in by_id]

    async def unclaim(self, lease: Lease, *, now: datetime) -> Task:
        """Undo a claim before the task started (fenced): pending again, the attempt given
        back, no history. TaskLostError when the lease is no longer held."""
        async with driver.unavailable_as_domain_error():
            document = await self._collection.find_one_and_update(
                self._fence(lease, TRANSITIONS[Action.UNCLAIM].sources),
                encode_change(unclaim_change(now=now)),
                return_document=ReturnDocument.AFTER,
            )
        if document is None:
            raise TaskLostError(lease.task_id, lease.owner, lease.attempt)
        return task_from_document(document)

    async def next_run_at(
        self, *, types: Collection[str], queues: Collection[str] | None = None
    ) -> datetime | None:
        if not types or (queues is not None and not queues):
            return None
        query = {"status": _sources(Action.CLAIM), "type": one_of(types)}
        if queues is not None:
            query["queue"] = one_of(queues)
        async with driver.unavailable_as_domain_error():
            document = await self._collection.find_one(
                query, {"run_at": True}, sort=[("run_at", 1)]
            )
        return None if document is None else utc(document["run_at"])

    @staticmethod
    def _fence(lease: Lease, statuses: Collection[TaskStatus]) -> dict[str, Any]:
        fence = {
            "_id": lease.task_id,
            "owner": lease.owner,
            "attempts": lease.attempt,
            "status": one_of(status.value for status in statuses),
        }
        if lease.started_at is not None:
            fence["started_at"] = lease.started_at
        return fence

    async def heartbeat(
        self, lease: Lease, *, now: datetime, lease_s: float, progress: Progress | None
    ) -> bool:
        update = encode_change(heartbeat_change(now=now, lease_s=lease_s, progress=progress))
        async with driver.unavailable_as_domain_error():
            document = await self._collection.find_one_and_update(
                self._fence(lease, _RUNNING),
                update,
                projection={"cancel_requested": True},
                return_document=ReturnDocument.AFTER,
            )
        if document is None:
            raise TaskLostError(lease.task_id, lease.owner, lease.attempt)
        return bool(document.get("cancel_requested", False))

    async def _finish(
        self,
        lease: Lease,
        action: Action,
        now: datetime,
        *,
        cancel_requested: bool | None = None,
        **values: Any,
    ) -> Task:
        """The fenced write ending the attempt with ``action``; with ``cancel_requested`` given,
        it also matches only while the task's cancel flag has that value."""
        fence = self._fence(lease, TRANSITIONS[action].sources)
        if cancel_requested is not None:
            fence["cancel_requested"] = True if cancel_requested else {"$ne": True}
        async with driver.unavailable_as_domain_error():
            started_at = lease.started_at
            if started_at is None:  # a lease rebuilt without it: read it (one more round trip)
                current = await self._collection.find_one(fence, {"started_at": True})
                if current is None:
                    raise TaskLostError(lease.task_id, lease.owner, lease.attempt)
                started_at = current.get("started_at")
            change = finish_change(
                action,
                lease,
                started_at=started_at,
                now=now,
                retention_s=self._retention_s,
                **values,
            )
            document = await self._collection.find_one_and_update(
                fence, encode_change(change), return_document=ReturnDocument.AFTER
            )
        if document is None:
            raise TaskLostError(lease.task_id, lease.owner, lease.attempt)
        return task_from_document(document)

    async def complete_many(
        self, completions: Sequence[Completion]
    ) -> builtins.list[Task | TaskLostError]:
        """One unordered bulk write of every fenced completion. When all match, each task is
        its claimed state with the change applied (a write that matched knows what it left:
        the filter also asks for no cancel request, the only field another writer may have
        changed that the change does not set). Otherwise one read tells which were written,
        and the others are completed one by one (or reported lost)."""
        if (
            len(completions) < 2
            or any(c.lease.started_at is None for c in completions)
            or driver.is_mongomock(self._collection)
        ):
            return await complete_each(self, completions)
        changes: builtins.list[Change] = []
        operations: builtins.list[UpdateOne] = []
        for c in completions:
            change = finish_change(
                Action.COMPLETE,
                c.lease,
                started_at=c.lease.started_at,
                now=c.now,
                retention_s=self._retention_s,
                result=c.result,
                progress=c.progress,
            )
            fence = {
                **self._fence(c.lease, TRANSITIONS[Action.COMPLETE].sources),
                "cancel_requested": {"$ne": True},
            }
            changes.append(change)
            operations.append(UpdateOne(fence, encode_change(change)))
        async with driver.unavailable_as_domain_error():
            written = await self._collection.bulk_write(operations, ordered=False)
            if written.matched_count == len(completions):
                return [
                    changed_task(c.task, ch) for c, ch in zip(completions, changes, strict=True)
                ]
            ids = [c.lease.task_id for c in completions]
            documents = await self._collection.find({"_id": {"$in": ids}}).to_list()
        by_id = {document["_id"]: task_from_document(document) for document in documents}
        answers: builtins.list[Task | TaskLostError] = []
        for c in completions:
            stored = by_id.get(c.lease.task_id)
            if stored is not None and _written_by(stored, c):
                answers.append(stored)
            else:
                answers += await complete_each(self, [c])
        return answers

    async def complete(
        self, lease: Lease, *, now: datetime, result: Any, progress: Progress | None = None
    ) -> Task:
        """running → completed with ``result``, progress 100; the last error is cleared (it stays
        in ``history``). Fenced: TaskLostError."""
        return await self._finish(lease, Action.COMPLETE, now, result=result, progress=progress)

    async def fail(
        self, lease: Lease, *, now: datetime, error: TaskError, progress: Progress | None = None
    ) -> Task:
        return await self._finish(lease, Action.FAIL, now, error=error, progress=progress)

    async def _finish_unless_cancelled(
        self, lease: Lease, action: Action, now: datetime, **values: Any
    ) -> Task:
        """End the attempt with what the domain makes of ``action`` for each value of the
        task's cancel flag (:func:`~cam_tasks.domain.changes.ending_action`).

        Two conditional writes, each atomic: the first matches only without the flag, the
        second only with it. Within one attempt the flag only ever turns on (only a claim
        clears it, and the fence excludes a new claim), so when both miss the lease is lost.
        """
        try:
            return await self._finish(
                lease,
                ending_action(action, cancel_requested=False),
                now,
                cancel_requested=False,
                **values,
            )
        except TaskLostError:
            return await self._finish(
                lease, ending_action(action, cancel_requested=True), now, cancel_requested=True
            )

    async def retry_later(
        self, lease: Lease, *, now: datetime, run_at: datetime, error: TaskError
    ) -> Task:
        return await self._finish_unless_cancelled(
            lease, Action.RETRY_LATER, now, error=error, run_at=run_at
        )

    async def release(self, lease: Lease, *, now: datetime) -> Task:
        return await self._finish_unless_cancelled(lease, Action.RELEASE, now)

    async def acknowledge_cancel(
        self,
        lease: Lease,
        *,
        now: datetime,
        result: Any = None,
        progress: Progress | None = None,
    ) -> Task:
        return await self._finish(
            lease, Action.ACKNOWLEDGE_CANCEL, now, result=result, progress=progress
        )

    async def rescue_expired(self, *, now: datetime, limit: int = 100) -> builtins.list[Task]:
        """Oldest expired leases first. A task is failed (``lease_expired``) instead of returned
        to pending when its ``attempts`` reached ``max_retries + 1``, and cancelled when a cancel
        was requested (its owner died before it could acknowledge)."""
        if limit <= 0:
            return []
        now = to_millis(now)
        query = {"status": _sources(Action.RESCUE), "lease_until": {"$lt": now}}
        fields = {
            "owner": True,
            "attempts": True,
            "max_retries": True,
            "started_at": True,
            "cancel_requested": True,
        }
        async with driver.unavailable_as_domain_error():
            cursor = self._collection.find(query, fields).sort([("lease_until", 1)])
            candidates: list[dict[str, Any]] = await cursor.limit(limit).to_list(None)
        rescued: list[Task] = []
        for candidate in candidates:
            attempts = int(candidate.get("attempts", 0))
            cancel_requested = bool(candidate.get("cancel_requested", False))
            action = rescue_action(
                attempts=attempts,
                max_attempts=int(candidate.get("max_retries", DEFAULT_MAX_RETRIES)) + 1,
                cancel_requested=cancel_requested,
            )
            owner = candidate.get("owner")
            lease = Lease(candidate["_id"], owner or "", attempts)
            change = finish_change(
                action,
                lease,
                started_at=candidate.get("started_at"),
                now=now,
                retention_s=self._retention_s,
            )
            # The whole predicate again: if the owner finished, or renewed its lease, or another
            # sweeper got here first since the read, this matches nothing and we leave it alone.
            # A cancel requested since the read also makes it miss: the next sweep cancels it.
            fence = {
                "_id": candidate["_id"],
                "status": _sources(action),
                "owner": owner,
                "attempts": attempts,
                "lease_until": {"$lt": now},
                "cancel_requested": True if cancel_requested else {"$ne": True},
            }
            async with driver.unavailable_as_domain_error():
                document = await self._collection.find_one_and_update(
                    fence, encode_change(change), return_document=ReturnDocument.AFTER
                )
            if document is not None:
                rescued.append(task_from_document(document))
        return rescued

    # -- operator actions ---------------------------------------------------------------------

    async def _status_of(self, task_id: str) -> TaskStatus:
        async with driver.unavailable_as_domain_error():
            document = await self._collection.find_one({"_id": task_id}, {"status": True})
        if document is None:
            raise TaskNotFoundError(task_id)
        return TaskStatus(document["status"])

    async def _update_by_id(
        self, task_id: str, action: Action, update: Mapping[str, Any]
    ) -> Task | None:
        async with driver.unavailable_as_domain_error():
            document = await self._collection.find_one_and_update(
                {"_id": task_id, "status": _sources(action)},
                update,
                return_document=ReturnDocument.AFTER,
            )
        return None if document is None else task_from_document(document)

    async def request_cancel(self, task_id: str, *, now: datetime) -> Task:
        status = TaskStatus.PENDING  # a guess, read only when the write misses
        for _ in range(_OPERATOR_ROUNDS):
            action = cancel_action(task_id, status)  # IllegalTransitionError once finished
            change = (
                cancel_change(now=now, retention_s=self._retention_s)
                if action is Action.CANCEL
                else cancel_flag_change(now=now)
            )
            task = await self._update_by_id(task_id, action, encode_change(change))
            if task is not None:
                return task
            # The status moved between the read and the write: decide again.
            status = await self._status_of(task_id)
        raise IllegalTransitionError(task_id, status.value, Action.CANCEL.value)

    async def retry(self, task_id: str, *, now: datetime) -> Task:
        update = encode_change(retry_change(now=now))
        current = await self.get(task_id)
        # Pending again, it holds its unique key again: the unique index refuses the retry
        # while another task with that key is active.
        active_key = active_key_of(current.model_copy(update={"status": TaskStatus.PENDING}))
        if active_key is not None:
            update["$set"][ACTIVE_KEY] = active_key
        status = current.status
        for _ in range(_OPERATOR_ROUNDS):
            try:
                task = await self._update_by_id(task_id, Action.RETRY, update)
            except DuplicateKeyError:
                holder = await self._active_holder(active_key)
                raise ActiveTaskExistsError(
                    task_id, active_task_id=None if holder is None else holder.id
                ) from None
            if task is not None:
                return task
            status = await self._status_of(task_id)
            if status not in TRANSITIONS[Action.RETRY].sources:
                break
        raise IllegalTransitionError(task_id, status.value, Action.RETRY.value)

    async def delete(self, task_id: str) -> None:
        status = TaskStatus.COMPLETED
        for _ in range(_OPERATOR_ROUNDS):
            async with driver.unavailable_as_domain_error():
                result = await self._collection.delete_one(
                    {"_id": task_id, "status": _sources(Action.DELETE)}
                )
            if result.deleted_count:
                return
            status = await self._status_of(task_id)
            if status not in TRANSITIONS[Action.DELETE].sources:
                break
        raise IllegalTransitionError(task_id, status.value, Action.DELETE.value)

    # -- bulk operator actions and per-queue counts ---------------------------------------------

    async def _update_many(
        self, query: TaskFilter, action: Action, change: Change, **extra: Any
    ) -> int:
        """One ``update_many`` applying ``change`` to the tasks of ``query`` in the legal source
        statuses of ``action`` (the status condition is in the filter: a task that moved on
        since the caller looked is left alone)."""
        narrowed = query.within(TRANSITIONS[action].sources)
        if narrowed is None:
            return 0
        async with driver.unavailable_as_domain_error():
            result = await self._collection.update_many(
                {**filter_to_query(narrowed), **extra}, encode_change(change)
            )
        return int(result.modified_count)

    async def retry_many(self, query: TaskFilter, *, now: datetime) -> int:
        """Tasks without a unique key in one ``update_many``; those with one one by one, as
        :meth:`retry` does (each takes its key back; one whose key another active task holds
        is left as it is and not counted)."""
        count = await self._update_many(query, Action.RETRY, retry_change(now=now), unique_key=None)
        narrowed = query.within(TRANSITIONS[Action.RETRY].sources)
        if narrowed is None:
            return count
        async with driver.unavailable_as_domain_error():
            cursor = self._collection.find(
                {**filter_to_query(narrowed), "unique_key": {"$type": "string"}}, {"_id": True}
            )
            keyed: list[dict[str, Any]] = await cursor.to_list(None)
        for document in keyed:
            try:
                await self.retry(document["_id"], now=now)
                count += 1
            except (ActiveTaskExistsError, IllegalTransitionError, TaskNotFoundError):
                continue  # its key is held, or it moved on or went since the read
        return count

    async def cancel_many(self, query: TaskFilter, *, now: datetime) -> int:
        cancelled = await self._update_many(
            query, Action.CANCEL, cancel_change(now=now, retention_s=self._retention_s)
        )
        # A running task already asked to stop is not asked again (nor counted twice).
        flagged = await self._update_many(
            query,
            Action.REQUEST_CANCEL,
            cancel_flag_change(now=now),
            cancel_requested={"$ne": True},
        )
        return cancelled + flagged

    async def delete_many(self, query: TaskFilter) -> int:
        narrowed = query.within(TRANSITIONS[Action.DELETE].sources)
        if narrowed is None:
            return 0
        async with driver.unavailable_as_domain_error():
            result = await self._collection.delete_many(filter_to_query(narrowed))
        return int(result.deleted_count)

    async def count_by_queue(
        self, query: TaskFilter | None = None
    ) -> dict[str, dict[TaskStatus, int]]:
        """One aggregation grouped by (queue, status), served by the ``queue_status`` index."""
        pipeline = [
            {"$match": filter_to_query(query)},
            {"$group": {"_id": {"q": "$queue", "s": "$status"}, "count": {"$sum": 1}}},
        ]
        async with driver.unavailable_as_domain_error():
            groups = await driver.aggregate(self._collection, pipeline)
        counts: dict[str, dict[TaskStatus, int]] = {}
        for group in groups:
            key = group["_id"]
            status = key.get("s")
            if status not in TaskStatus.__members__.values():
                continue
            queue = key.get("q") or DEFAULT_QUEUE  # stored before Task.queue existed
            per_queue = counts.setdefault(queue, dict.fromkeys(TaskStatus, 0))
            per_queue[TaskStatus(status)] += int(group["count"])
        return counts
