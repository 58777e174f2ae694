"""Every index cam_tasks creates, declared in one place, and their idempotent creation.

``tasks`` collection (:data:`TASK_INDEXES`). Each index names the query it serves (see
:mod:`cam_tasks.repository.mongo.tasks`). Compound keys
follow the ESR rule: Equality fields first, then the Sort fields, then Range fields.

- ``claim_queue``: ``status`` =, ``queue`` =, ``type`` = / ``$in`` (equality), then the claim
  order ``priority`` desc, ``run_at``, ``created_at``, ``_id`` (sort); the ``run_at <= now``
  range rides on the sort key, so each (type, priority) run is scanned in order only up to
  ``now``. With several types the server merges the per-type runs (SORT_MERGE): no blocking
  sort. A claim passing over full concurrency keys adds ``concurrency_key $nin`` as a filter.
- ``claim_queue_age``: ``status`` =, ``queue`` =, ``type`` = / ``$in``, then the age order
  ``run_at``, ``created_at``, ``_id``: the fair claim (``order="age"``: the oldest due task
  whatever its priority) reads its first entry; its prefix also serves ``next_run_at``.
  (They replaced ``claim``/``claim_age`` of version 0.1, which had no queue; a database created
  by it keeps those unused until they are dropped.)
- ``rescue``: ``status`` = running, ``lease_until < now``, sorted by ``lease_until``.
- ``list_*``: the list filters that have one (all, status, type, type+status, created_by,
  project_id) followed by ``created_at``, ``_id``, walked backwards for newest first; ``count``
  with the same filter uses the same index.
- ``list_queue``: ``?queue=`` (``queue`` = / ``$in``) followed by the list order.
- ``queue_status``: the per-queue counts of pending and running tasks (``GET /queues``,
  ``/queue/stats``): a ``$match`` on ``status`` and a ``$group`` by (queue, status), covered.
- ``finished``: the bulk operations over finished tasks (``status`` =, ``completed_at`` range:
  ``finished_before`` / ``finished_after``).
- ``updated_at``: the ``updated_since`` range.
- ``idempotency_key``: unique, PARTIAL on string keys only, so the many tasks without a key
  (stored as null) never collide; lookups add ``$type: "string"`` so the planner can use it.
- ``active_key``: unique, PARTIAL on string keys: a task's ``unique_key`` (with its project)
  while it is pending or running, unset when it ends, so at most one active task per key
  exists, enforced by the server across instances.
- ``expire_at``: TTL with ``expireAfterSeconds=0``: the server deletes a document once its
  ``expire_at`` has passed. Only finished tasks ever carry the field.

Reads by ``_id`` (get, fenced writes, operator actions, delete) use the built-in ``_id`` index.

``schedules`` collection (:data:`SCHEDULE_INDEXES`):

- ``name``: unique; the identity of a schedule (every read and write by name) and the order of
  the list.
- ``due``: ``active`` =, then ``next_run_at`` (range and sort): the scheduler's "due now" query
  and its "earliest next fire time" lookup (limit 1).
- ``firing``: PARTIAL on documents whose ``firing_at`` is a date: the fires claimed but not yet
  recorded (normally none, so the index stays empty).

``queues`` collection (:data:`QUEUE_INDEXES`): one document per queue that was ever paused or
resumed, ``_id`` = the queue's name; ``paused``: the paused queues, read by every dispatcher
each poll interval (``paused = true``).

``assets`` collection (:data:`INVENTORY_INDEXES`):

- ``asset_key``: unique (provider, account_id, region, asset_type, asset_id): the identity of
  an asset; also serves ``fingerprints(scope)`` and ``find()`` by provider+account, whose sort
  (region, asset_type, asset_id) follows this prefix.
- ``asset_order``: ``find()`` without provider/account: the sort is still served by an index.
- ``asset_project``: ``search()`` and ``summary()`` of a non-admin, scoped to its projects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import OperationFailure

from cam_tasks.domain import ConfigurationError
from cam_tasks.repository.documents import ASSET_KEY_FIELDS, ASSET_SORT_FIELDS
from cam_tasks.repository.mongo.driver import unavailable_as_domain_error

__all__ = [
    "INVENTORY_INDEXES",
    "QUEUE_INDEXES",
    "SCHEDULE_INDEXES",
    "TASK_INDEXES",
    "create_indexes",
    "create_queue_indexes",
    "create_schedule_indexes",
    "create_task_indexes",
]

# Declared ascending although lists read newest first: a server walks an index backwards for
# the exact reverse of its key order, so this serves `created_at desc, _id desc` all the same.
# (SecantusDB 0.7 also returns ties on `created_at` in the wrong `_id` order when the keys are
# declared descending; ascending keys walked backwards are right on every server.)
_NEWEST_FIRST = [("created_at", ASCENDING), ("_id", ASCENDING)]

TASK_INDEXES: tuple[IndexModel, ...] = (
    IndexModel(
        [
            ("status", ASCENDING),
            ("queue", ASCENDING),
            ("type", ASCENDING),
            ("priority", DESCENDING),
            ("run_at", ASCENDING),
            ("created_at", ASCENDING),
            ("_id", ASCENDING),
        ],
        name="claim_queue",
    ),
    IndexModel(
        [
            ("status", ASCENDING),
            ("queue", ASCENDING),
            ("type", ASCENDING),
            ("run_at", ASCENDING),
            ("created_at", ASCENDING),
            ("_id", ASCENDING),
        ],
        name="claim_queue_age",
    ),
    IndexModel([("status", ASCENDING), ("lease_until", ASCENDING)], name="rescue"),
    IndexModel(_NEWEST_FIRST, name="list_all"),
    IndexModel([("status", ASCENDING), *_NEWEST_FIRST], name="list_status"),
    IndexModel([("type", ASCENDING), *_NEWEST_FIRST], name="list_type"),
    IndexModel(
        [("type", ASCENDING), ("status", ASCENDING), *_NEWEST_FIRST], name="list_type_status"
    ),
    IndexModel([("created_by", ASCENDING), *_NEWEST_FIRST], name="list_created_by"),
    IndexModel([("project_id", ASCENDING), *_NEWEST_FIRST], name="list_project"),
    IndexModel([("queue", ASCENDING), *_NEWEST_FIRST], name="list_queue"),
    IndexModel([("queue", ASCENDING), ("status", ASCENDING)], name="queue_status"),
    IndexModel([("status", ASCENDING), ("completed_at", ASCENDING)], name="finished"),
    IndexModel([("updated_at", ASCENDING)], name="updated_at"),
    IndexModel(
        [("idempotency_key", ASCENDING)],
        name="idempotency_key",
        unique=True,
        partialFilterExpression={"idempotency_key": {"$type": "string"}},
    ),
    IndexModel([("expire_at", ASCENDING)], name="expire_at", expireAfterSeconds=0),
    IndexModel(
        [("active_key", ASCENDING)],
        name="active_key",
        unique=True,
        partialFilterExpression={"active_key": {"$type": "string"}},
    ),
)


async def create_indexes(collection: Any, models: Sequence[IndexModel]) -> list[str]:
    """Create every index of ``models`` on ``collection``; return their names.

    Idempotent: an index that already exists with the same definition is left alone. An index
    that exists under the same name with another definition raises ConfigurationError (it needs
    a migration: drop it, then start again). Unreachable database: DatabaseUnavailableError.
    """
    names: list[str] = []
    for model in models:
        # One create_index per model rather than create_indexes: mongomock's create_indexes
        # silently drops partialFilterExpression, which would make every null key collide.
        options = dict(model.document)
        keys = list(options.pop("key").items())
        try:
            async with unavailable_as_domain_error():
                names.append(await collection.create_index(keys, **options))
        except OperationFailure as exc:
            reason = (exc.details or {}).get("errmsg", str(exc))
            raise ConfigurationError(
                f"index {options['name']!r} of {collection.name!r} exists with another "
                f"definition (drop it to migrate): {reason}"
            ) from exc
    return names


async def create_task_indexes(collection: Any) -> list[str]:
    """Create :data:`TASK_INDEXES` on the tasks collection (see :func:`create_indexes`)."""
    return await create_indexes(collection, TASK_INDEXES)


SCHEDULE_INDEXES: tuple[IndexModel, ...] = (
    IndexModel([("name", ASCENDING)], name="name", unique=True),
    IndexModel([("active", ASCENDING), ("next_run_at", ASCENDING)], name="due"),
    IndexModel(
        [("firing_at", ASCENDING)],
        name="firing",
        partialFilterExpression={"firing_at": {"$type": "date"}},
    ),
)


async def create_schedule_indexes(collection: Any) -> list[str]:
    """Create :data:`SCHEDULE_INDEXES` (see :func:`create_indexes`). Idempotent."""
    return await create_indexes(collection, SCHEDULE_INDEXES)


INVENTORY_INDEXES: tuple[IndexModel, ...] = (
    IndexModel([(f, ASCENDING) for f in ASSET_KEY_FIELDS], name="asset_key", unique=True),
    IndexModel([(f, ASCENDING) for f in ASSET_SORT_FIELDS], name="asset_order"),
    IndexModel(
        [("last_sync.project_id", ASCENDING), *((f, ASCENDING) for f in ASSET_SORT_FIELDS)],
        name="asset_project",
    ),
)


QUEUE_INDEXES: tuple[IndexModel, ...] = (IndexModel([("paused", ASCENDING)], name="paused"),)


async def create_queue_indexes(collection: Any) -> list[str]:
    """Create :data:`QUEUE_INDEXES` (see :func:`create_indexes`). Idempotent."""
    return await create_indexes(collection, QUEUE_INDEXES)
