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
from typing import Any

import pytest

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
