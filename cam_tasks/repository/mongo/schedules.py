"""The MongoDB schedule store: :class:`ScheduleRepository` on the ``schedules`` collection.

Works on a PyMongo async, Motor or mongomock-motor database. Every write is one conditional
update (see :class:`cam_tasks.repository.protocol.ScheduleRepository` for the two conditions
the scheduling guarantees rest on); every driver call runs inside
:func:`~cam_tasks.repository.mongo.driver.unavailable_as_domain_error`. Names are always
matched with ``$eq``, so no value can act as an operator.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from cam_tasks.domain import Schedule, ScheduleExistsError, ScheduleNotFoundError, to_millis, utc
from cam_tasks.domain.lifecycle import Initializable
from cam_tasks.repository.documents import (
    CONFIG_FIELDS,
    check_schedule_page,
    check_types,
    schedule_from_document,
    schedule_to_document,
)
from cam_tasks.repository.mongo import driver
from cam_tasks.repository.mongo.indexes import create_schedule_indexes

__all__ = ["MongoScheduleRepository"]


def _type_filter(types: Collection[str] | None) -> dict[str, Any]:
    """The query condition for "type is one of ``types``" (nothing when None: any type)."""
    check_types(types)
    return {} if types is None else {"type": {"$in": sorted(types)}}


class MongoScheduleRepository(Initializable):
    """Schedules in one MongoDB collection (default ``schedules``), on a PyMongo async, Motor or
    mongomock-motor database. Every driver call runs inside
    :func:`~cam_tasks.repository.mongo.driver.unavailable_as_domain_error`."""

    def __init__(self, database: Any, *, collection_name: str = "schedules") -> None:
        self._database = database
        self._collection_name = collection_name
        self._collection: Any = database[collection_name]

    async def initialize(self) -> None:
        """Create the indexes (idempotent); on a replica set (or mongos) write with
        ``w="majority"`` from now on, so an acknowledged fire claim survives a failover."""
        await create_schedule_indexes(self._collection)
        self._collection = await driver.durable_collection(self._database, self._collection_name)

    async def close(self) -> None:
        """Nothing to release: the database handle belongs to whoever passed it. Idempotent."""

    async def insert(self, schedule: Schedule) -> Schedule:
        document = schedule_to_document(schedule)
        try:
            async with driver.unavailable_as_domain_error():
                await self._collection.insert_one(document)
        except DuplicateKeyError:
            raise ScheduleExistsError(schedule.name) from None
        return schedule_from_document(document)

    async def get(self, name: str) -> Schedule:
        async with driver.unavailable_as_domain_error():
            document = await self._collection.find_one({"name": {"$eq": name}})
        if document is None:
            raise ScheduleNotFoundError(name)
        return schedule_from_document(document)

    async def list(
        self, *, active: bool | None = None, offset: int = 0, limit: int = 100
    ) -> tuple[builtins.list[Schedule], int]:
        check_schedule_page(offset, limit)
        query: dict[str, Any] = {} if active is None else {"active": bool(active)}
        async with driver.unavailable_as_domain_error():
            total: int = await self._collection.count_documents(query)
            documents: list[dict[str, Any]] = []
            if limit and offset < total:
                cursor = self._collection.find(query).sort([("name", 1)])
                documents = await cursor.skip(offset).limit(limit).to_list(None)
        return [schedule_from_document(d) for d in documents], total

    async def _find_and_set(
        self, query: dict[str, Any], update: dict[str, Any]
    ) -> dict[str, Any] | None:
        async with driver.unavailable_as_domain_error():
            document: dict[str, Any] | None = await self._collection.find_one_and_update(
                query, update, return_document=ReturnDocument.AFTER
            )
        return document

    async def replace(self, schedule: Schedule, *, revision: int) -> Schedule | None:
        stored = schedule_to_document(schedule)
        fields = {name: stored[name] for name in CONFIG_FIELDS}
        document = await self._find_and_set(
            {"name": {"$eq": schedule.name}, "revision": revision},
            {"$set": fields, "$inc": {"revision": 1}},
        )
        if document is not None:
            return schedule_from_document(document)
        await self.get(schedule.name)  # ScheduleNotFoundError when it is gone
        return None

    async def delete(self, name: str) -> None:
        async with driver.unavailable_as_domain_error():
            result = await self._collection.delete_one({"name": {"$eq": name}})
        if not result.deleted_count:
            raise ScheduleNotFoundError(name)

    async def due(
        self, *, now: datetime, types: Collection[str] | None = None, limit: int = 100
    ) -> builtins.list[Schedule]:
        query = {"active": True, "next_run_at": {"$lte": to_millis(now)}, **_type_filter(types)}
        async with driver.unavailable_as_domain_error():
            cursor = self._collection.find(query).sort([("next_run_at", 1), ("name", 1)])
            documents: list[dict[str, Any]] = await cursor.limit(limit).to_list(None)
        return [schedule_from_document(d) for d in documents]

    async def firing(
        self, *, types: Collection[str] | None = None, limit: int = 100
    ) -> builtins.list[Schedule]:
        # `$type: date` repeats the partial filter of the `firing` index so the planner uses it.
        query = {"firing_at": {"$type": "date"}, **_type_filter(types)}
        async with driver.unavailable_as_domain_error():
            cursor = self._collection.find(query).sort([("firing_at", 1)])
            documents: list[dict[str, Any]] = await cursor.limit(limit).to_list(None)
        return [schedule_from_document(d) for d in documents]

    async def next_run_at(self, *, types: Collection[str] | None = None) -> datetime | None:
        query = {"active": True, "next_run_at": {"$type": "date"}, **_type_filter(types)}
        async with driver.unavailable_as_domain_error():
            document = await self._collection.find_one(
                query, {"next_run_at": True}, sort=[("next_run_at", 1)]
            )
        return None if document is None else utc(document["next_run_at"])

    @staticmethod
    def _slot(name: str, revision: int, fire_at: datetime) -> dict[str, Any]:
        return {
            "name": {"$eq": name},
            "active": True,
            "revision": revision,
            "next_run_at": to_millis(fire_at),
            "firing_at": None,  # matches null and missing: no fire pending
        }

    async def claim_fire(
        self,
        name: str,
        *,
        revision: int,
        fire_at: datetime,
        next_run_at: datetime | None,
        now: datetime,
    ) -> Schedule | None:
        update = {
            "$set": {
                "next_run_at": None if next_run_at is None else to_millis(next_run_at),
                "firing_at": to_millis(fire_at),
                "last_run_at": to_millis(now),
            }
        }
        document = await self._find_and_set(self._slot(name, revision, fire_at), update)
        return None if document is None else schedule_from_document(document)

    async def skip_fire(
        self, name: str, *, revision: int, fire_at: datetime, next_run_at: datetime | None
    ) -> bool:
        update = {"$set": {"next_run_at": None if next_run_at is None else to_millis(next_run_at)}}
        async with driver.unavailable_as_domain_error():
            result = await self._collection.update_one(self._slot(name, revision, fire_at), update)
        return bool(result.modified_count)

    async def finish_fire(
        self, name: str, *, fire_at: datetime, task_id: str | None, error: str | None
    ) -> bool:
        query = {"name": {"$eq": name}, "firing_at": to_millis(fire_at)}
        update = {"$set": {"firing_at": None, "last_task_id": task_id, "last_error": error}}
        async with driver.unavailable_as_domain_error():
            result = await self._collection.update_one(query, update)
        return bool(result.modified_count)

    async def record_run(self, name: str, *, now: datetime, task_id: str) -> Schedule:
        update = {
            "$set": {"last_run_at": to_millis(now), "last_task_id": task_id, "last_error": None}
        }
        document = await self._find_and_set({"name": {"$eq": name}}, update)
        if document is None:
            raise ScheduleNotFoundError(name)
        return schedule_from_document(document)
