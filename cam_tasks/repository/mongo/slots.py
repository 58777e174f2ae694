"""Concurrency-key slots in MongoDB: one document per key in the ``key_slots`` collection.

``{_id: key, holders: [{task_id, owner, attempt}, …]}``. Taking a slot is one conditional
update: it matches only while the ``holders`` array has no element at index ``limit - 1`` (fewer
than ``limit`` holders) and pushes the holder, so racing instances can never exceed the limit;
the first holder of a key creates the document (a racing creator gets a duplicate key and tries
the update again). Freeing is a ``$pull``. Keys are matched by ``_id`` only, with ``$eq``.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import DuplicateKeyError

from cam_tasks.domain import Lease
from cam_tasks.domain.lifecycle import Initializable
from cam_tasks.repository.mongo import driver

__all__ = ["MongoKeySlotRepository"]

# Creating a key's document races other creators at most once each; a few rounds settle it.
_ROUNDS = 3


def _entry(holder: Lease) -> dict[str, Any]:
    return {"task_id": holder.task_id, "owner": holder.owner, "attempt": holder.attempt}


class MongoKeySlotRepository(Initializable):
    """Key slots in one collection (default ``key_slots``) of a PyMongo async, Motor or
    mongomock-motor database. Safe for many coroutines and processes at once."""

    def __init__(self, database: Any, *, collection_name: str = "key_slots") -> None:
        self._database = database
        self._collection_name = collection_name
        self._collection: Any = database[collection_name]

    async def initialize(self) -> None:
        """Writes use ``w="majority"`` on a replica set (a slot must survive a failover); the
        only index needed is ``_id``'s."""
        self._collection = await driver.durable_collection(self._database, self._collection_name)

    async def close(self) -> None:
        """Nothing to release: the database handle belongs to whoever passed it."""

    async def acquire(self, key: str, *, limit: int, holder: Lease) -> bool:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        entry = _entry(holder)
        for _ in range(_ROUNDS):
            async with driver.unavailable_as_domain_error():
                taken = await self._collection.update_one(
                    {"_id": {"$eq": key}, f"holders.{limit - 1}": {"$exists": False}},
                    {"$addToSet": {"holders": entry}},
                )
                if taken.matched_count:
                    return True
                try:
                    await self._collection.insert_one({"_id": key, "holders": [entry]})
                    return True
                except DuplicateKeyError:
                    pass  # the key exists: full, or created by a racing first holder
                full = await self._collection.find_one({"_id": {"$eq": key}}, {"holders": True})
            if full is not None:
                holders = full.get("holders") or []
                if entry in holders:
                    return True
                if len(holders) >= limit:
                    return False
        return False

    async def acquire_many(self, requests: Sequence[tuple[str, int, Lease]]) -> builtins.list[bool]:
        """One unordered bulk write: per key, one conditional update that pushes all its
        holders while the key has room for them all. When every update matched, all are taken;
        otherwise (a key without room for all, or without its document yet) each request not
        known to be taken goes through :meth:`acquire`, which finds a holder already pushed."""
        if len(requests) < 2 or driver.is_mongomock(self._collection):
            return [await self.acquire(k, limit=n, holder=h) for k, n, h in requests]
        by_key: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        for key, limit, holder in requests:
            if limit < 1:
                raise ValueError("limit must be >= 1")
            by_key.setdefault(key, (limit, []))[1].append(_entry(holder))
        operations = [
            UpdateOne(
                {"_id": {"$eq": key}, f"holders.{limit - len(entries)}": {"$exists": False}},
                {"$addToSet": {"holders": {"$each": entries}}},
            )
            for key, (limit, entries) in by_key.items()
            if len(entries) <= limit
        ]
        if len(operations) == len(by_key):
            async with driver.unavailable_as_domain_error():
                written = await self._collection.bulk_write(operations, ordered=False)
            if written.matched_count == len(operations):
                return [True] * len(requests)
        return [await self.acquire(k, limit=n, holder=h) for k, n, h in requests]

    async def release(self, key: str, holder: Lease) -> None:
        async with driver.unavailable_as_domain_error():
            await self._collection.update_one(
                {"_id": {"$eq": key}}, {"$pull": {"holders": _entry(holder)}}
            )

    async def holders(self, key: str) -> builtins.list[Lease]:
        async with driver.unavailable_as_domain_error():
            document = await self._collection.find_one({"_id": {"$eq": key}})
        if document is None:
            return []
        return [
            Lease(h["task_id"], h["owner"], int(h["attempt"]))
            for h in document.get("holders") or ()
        ]

    async def held(self) -> dict[str, int]:
        async with driver.unavailable_as_domain_error():
            cursor = self._collection.find({"holders.0": {"$exists": True}}, {"holders": True})
            documents: list[dict[str, Any]] = await cursor.to_list(None)
        return {document["_id"]: len(document["holders"]) for document in documents}
