"""The MongoDB queue flags: :class:`QueueRepository` on the ``queues`` collection.

One document per queue ever paused or resumed: ``{_id: name, paused, updated_at}``. A pause
is one upsert, so every instance sharing the database sees it on its next read; the names are
matched with ``$eq``, so no value can act as an operator.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cam_tasks.domain import to_millis
from cam_tasks.domain.lifecycle import Initializable
from cam_tasks.repository.mongo import driver
from cam_tasks.repository.mongo.indexes import create_queue_indexes

__all__ = ["MongoQueueRepository"]


class MongoQueueRepository(Initializable):
    """Queue flags in one MongoDB collection (default ``queues``), on a PyMongo async, Motor or
    mongomock-motor database. Safe from many coroutines and processes: each write is one
    atomic upsert, the last one wins."""

    def __init__(self, database: Any, *, collection_name: str = "queues") -> None:
        self._database = database
        self._collection_name = collection_name
        self._collection: Any = database[collection_name]

    async def initialize(self) -> None:
        """Create the indexes (idempotent); on a replica set write with ``w="majority"``, so an
        acknowledged pause survives a failover."""
        await create_queue_indexes(self._collection)
        self._collection = await driver.durable_collection(self._database, self._collection_name)

    async def close(self) -> None:
        """Nothing to release: the database handle belongs to whoever passed it. Idempotent."""

    async def set_paused(self, queue: str, paused: bool, *, now: datetime) -> None:
        async with driver.unavailable_as_domain_error():
            await self._collection.update_one(
                {"_id": {"$eq": queue}},
                {"$set": {"paused": bool(paused), "updated_at": to_millis(now)}},
                upsert=True,
            )

    async def paused(self) -> frozenset[str]:
        """Served by the ``paused`` index (covered: only ``_id`` is read)."""
        async with driver.unavailable_as_domain_error():
            cursor = self._collection.find({"paused": True}, {"_id": True})
            documents = await cursor.to_list(None)
        return frozenset(str(document["_id"]) for document in documents)
