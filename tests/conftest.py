"""Shared fixtures: fresh databases on every backend the repository must work on.

- ``mongomock``: mongomock-motor, in process (Motor-shaped API), always available.
- ``wire``: a real MongoDB-wire server over TCP at ``MONGODB_URI`` (``scripts/test`` starts
  SecantusDB and sets it; point it at a real MongoDB to run the suite there). Without
  ``MONGODB_URI`` the wire tests are skipped, with that reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from cam_tasks.domain import Clock, SystemClock
from cam_tasks.repository import (
    AssetInventory,
    KeySlotRepository,
    MemoryAssetInventory,
    MemoryKeySlotRepository,
    MemoryQueueRepository,
    MemoryScheduleRepository,
    MemoryTaskRepository,
    MongoAssetInventory,
    MongoKeySlotRepository,
    MongoQueueRepository,
    MongoScheduleRepository,
    MongoTaskRepository,
    QueueRepository,
    ScheduleRepository,
    TaskRepository,
)

WIRE_URI = os.environ.get("MONGODB_URI")


def _database_name() -> str:
    return f"cam_tasks_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def mongomock_db() -> AsyncIterator[Any]:
    from mongomock_motor import AsyncMongoMockClient

    client: Any = AsyncMongoMockClient()
    yield client[_database_name()]
    client.close()


@pytest.fixture
async def wire_db() -> AsyncIterator[Any]:
    if not WIRE_URI:
        pytest.skip("MONGODB_URI is not set (scripts/test starts a wire server and sets it)")
    from pymongo import AsyncMongoClient

    client: Any = AsyncMongoClient(WIRE_URI, serverSelectionTimeoutMS=5000, tz_aware=True)
    database = client[_database_name()]
    yield database
    await client.drop_database(database.name)
    await client.close()


# -- the store backends: the one place that names them -----------------------------------------

#: Every backend a store must work on. Contract suites take the ``backend`` fixture (all of
#: them) or ``mongo_backend`` (the two that speak the MongoDB API).
BACKENDS = ("memory", "mongomock", "wire")
MONGO_BACKENDS = tuple(name for name in BACKENDS if name != "memory")


@dataclass(frozen=True)
class Backend:
    """One backend of a test: its name and, for the Mongo ones, a fresh database. Builds the
    stores of that backend, typed as their protocols."""

    name: str
    database: Any = None

    def tasks(
        self, *, retention_s: float | None = None, clock: Clock | None = None, **mongo: Any
    ) -> TaskRepository:
        """The task repository (``mongo``: extra keywords of the Mongo one)."""
        if self.database is None:
            return MemoryTaskRepository(retention_s=retention_s, clock=clock or SystemClock())
        return MongoTaskRepository(self.database, retention_s=retention_s, **mongo)

    def schedules(self) -> ScheduleRepository:
        if self.database is None:
            return MemoryScheduleRepository()
        return MongoScheduleRepository(self.database)

    def slots(self) -> KeySlotRepository:
        if self.database is None:
            return MemoryKeySlotRepository()
        return MongoKeySlotRepository(self.database)

    def inventory(self) -> AssetInventory:
        if self.database is None:
            return MemoryAssetInventory()
        return MongoAssetInventory(self.database)

    def queues(self) -> QueueRepository:
        if self.database is None:
            return MemoryQueueRepository()
        return MongoQueueRepository(self.database)


def _backend(request: pytest.FixtureRequest, name: str) -> Backend:
    if name == "memory":
        return Backend(name)
    return Backend(name, request.getfixturevalue(f"{name}_db"))


# Sync fixtures: pytest-asyncio cannot resolve an async fixture through getfixturevalue from
# inside another async fixture (its loop is already running).
@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend in turn (the wire one is skipped without ``MONGODB_URI``)."""
    return _backend(request, request.param)


@pytest.fixture(params=MONGO_BACKENDS)
def mongo_backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend that speaks the MongoDB API, in turn."""
    return _backend(request, request.param)
