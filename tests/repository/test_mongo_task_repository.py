"""What only the Mongo task repository promises: its indexes, its document shape (which the TTL
index and other tools rely on), and how it reports an unreachable server."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.errors import AutoReconnect, ServerSelectionTimeoutError

from cam_tasks.domain import (
    ConfigurationError,
    DatabaseUnavailableError,
    Lease,
    TaskFilter,
    TaskStatus,
    new_task,
)
from cam_tasks.repository import TASK_INDEXES, MongoTaskRepository
from tests.conftest import Backend

# In the future: TTL indexes delete by the wall clock (see the contract suite).
T0 = datetime(2100, 1, 1, tzinfo=UTC)
INDEX_NAMES = {model.document["name"] for model in TASK_INDEXES}


@pytest.fixture
def database(mongo_backend: Backend) -> Any:
    return mongo_backend.database


async def test_initialize_creates_every_declared_index_and_is_idempotent(database: Any) -> None:
    repo = MongoTaskRepository(database)
    await repo.initialize()
    await repo.initialize()
    indexes = await database["tasks"].index_information()
    assert set(indexes) == INDEX_NAMES | {"_id_"}
    key = indexes["idempotency_key"]
    assert key["unique"] is True
    assert dict(key["partialFilterExpression"]) == {"idempotency_key": {"$type": "string"}}
    assert indexes["expire_at"]["expireAfterSeconds"] == 0


async def test_an_index_redefined_under_its_name_is_a_configuration_error(database: Any) -> None:
    await database["tasks"].create_index([("something_else", 1)], name="claim_queue")
    with pytest.raises(ConfigurationError, match="claim_queue"):
        await MongoTaskRepository(database).initialize()


async def test_a_custom_collection_name_is_used(database: Any) -> None:
    repo = MongoTaskRepository(database, collection_name="jobs")
    await repo.initialize()
    task = await repo.insert(new_task(task_type="sync", params={}, now=T0))
    assert await database["jobs"].find_one({"_id": task.id}) is not None
    assert "claim_queue" in await database["jobs"].index_information()


async def test_documents_are_keyed_by_task_id_with_string_enums(database: Any) -> None:
    repo = MongoTaskRepository(database)
    await repo.initialize()
    task = await repo.insert(new_task(task_type="sync", params={"a": 1}, now=T0))
    document = await database["tasks"].find_one({"_id": task.id})
    assert "id" not in document
    assert (document["status"], document["params"], document["history"]) == (
        "pending",
        {"a": 1},
        [],
    )
    assert isinstance(document["run_at"], datetime)


async def test_only_finished_tasks_carry_a_bson_date_for_the_ttl_index(database: Any) -> None:
    repo = MongoTaskRepository(database, retention_s=3600)
    await repo.initialize()
    active = await repo.insert(new_task(task_type="a", params={}, now=T0))
    done = await repo.insert(new_task(task_type="b", params={}, now=T0))
    claimed = await repo.claim(types=["b"], owner="w", now=T0, lease_s=30)
    assert claimed is not None
    await repo.complete(claimed.lease, now=T0, result=None)
    await repo.claim(types=["a"], owner="w", now=T0, lease_s=30)

    finished = await database["tasks"].find_one({"_id": done.id})
    expire_at = finished["expire_at"]
    assert isinstance(expire_at, datetime)
    assert expire_at.replace(tzinfo=UTC) == T0 + timedelta(hours=1)
    assert "expire_at" not in await database["tasks"].find_one({"_id": active.id})


async def test_retention_must_be_positive(database: Any) -> None:
    with pytest.raises(ValueError, match="retention_s"):
        MongoTaskRepository(database, retention_s=0)


class _DownDatabase:
    """A database whose server cannot be reached: every call fails as the driver fails then.

    (A client on a closed port would do too, but PyMongo's async monitor leaks its socket when
    close() cancels it mid-connect, and filterwarnings=error then fails an unrelated test.)
    """

    name = "down"

    def __init__(self, error: Exception) -> None:
        self._error = error

    def __getitem__(self, name: str) -> _DownDatabase:
        return self

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise self._error

        return fail


@pytest.mark.parametrize(
    "error",
    [ServerSelectionTimeoutError("No servers found yet"), AutoReconnect("connection reset")],
)
async def test_an_unreachable_server_raises_database_unavailable(error: Exception) -> None:
    repo = MongoTaskRepository(_DownDatabase(error))
    lease = Lease("t", "w", 1)
    calls: list[Callable[[], Awaitable[Any]]] = [
        repo.initialize,
        repo.ping,
        lambda: repo.insert(new_task(task_type="sync", params={}, now=T0)),
        lambda: repo.get("t"),
        lambda: repo.list(TaskFilter(), offset=0, limit=10),
        repo.count_by_status,
        lambda: repo.claim(types=["sync"], owner="w", now=T0, lease_s=30),
        lambda: repo.next_run_at(types=["sync"]),
        lambda: repo.heartbeat(lease, now=T0, lease_s=30, progress=None),
        lambda: repo.complete(lease, now=T0, result=None),
        lambda: repo.rescue_expired(now=T0),
        lambda: repo.request_cancel("t", now=T0),
        lambda: repo.retry("t", now=T0),
        lambda: repo.delete("t"),
    ]
    for call in calls:
        with pytest.raises(DatabaseUnavailableError) as info:
            await call()
        assert info.value.__cause__ is error


class _ReplicaSetMember:
    """A mongomock database that answers ``hello`` as a replica-set member does."""

    def __init__(self, database: Any) -> None:
        self._database = database

    def __getitem__(self, name: str) -> Any:
        return self._database[name]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._database, name)

    async def command(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "hello":
            return {"isWritablePrimary": True, "setName": "rs0"}
        return await self._database.command(name, *args, **kwargs)


@pytest.mark.parametrize("replica_set", [True, False])
async def test_writes_use_majority_on_a_replica_set_only(
    mongomock_db: Any, replica_set: bool, caplog: pytest.LogCaptureFixture
) -> None:
    database = _ReplicaSetMember(mongomock_db) if replica_set else mongomock_db
    repo = MongoTaskRepository(database)
    with caplog.at_level(logging.INFO, logger="cam_tasks.repository.mongo"):
        await repo.initialize()
    assert any("w=majority" in r.getMessage() for r in caplog.records) is replica_set
    task = await repo.insert(new_task(task_type="sync", params={}, now=T0))
    assert await repo.claim(types=["sync"], owner="w", now=T0, lease_s=30) is not None
    assert (await repo.get(task.id)).status is TaskStatus.RUNNING


def _stages(plan: Any, found: list[str]) -> list[str]:
    if isinstance(plan, dict):
        if "stage" in plan:
            found.append(plan["stage"])
        for value in plan.values():
            _stages(value, found)
    elif isinstance(plan, list):
        for value in plan:
            _stages(value, found)
    return found


async def test_every_query_shape_is_served_by_an_index(wire_db: Any) -> None:
    """Checked on real MongoDB only: SecantusDB's planner sorts in memory and scans for `$in`."""
    build_info = await wire_db.command("buildInfo")
    if "secantusVersion" in build_info:
        pytest.skip("SecantusDB's query planner does not choose indexes like MongoDB's")
    repo = MongoTaskRepository(wire_db)
    await repo.initialize()
    for i in range(20):
        task = new_task(task_type=f"t{i % 3}", params={}, now=T0, created_by=f"u{i % 2}")
        await repo.insert(task.model_copy(update={"project_id": f"p{i % 3}"}))
    newest = [("created_at", -1), ("_id", -1)]
    shapes: list[tuple[dict[str, Any], list[tuple[str, int]]]] = [
        (
            {
                "status": "pending",
                "queue": "default",
                "type": {"$in": ["t0", "t1"]},
                "run_at": {"$lte": T0},
                "concurrency_key": {"$nin": ["k"]},
            },
            [("priority", -1), ("run_at", 1), ("created_at", 1), ("_id", 1)],
        ),
        (
            {
                "status": "pending",
                "queue": "default",
                "type": {"$in": ["t0", "t1"]},
                "run_at": {"$lt": T0},
            },
            [("run_at", 1), ("created_at", 1), ("_id", 1)],
        ),
        (
            {"status": "pending", "queue": {"$in": ["a", "default"]}, "type": "t0"},
            [("run_at", 1)],
        ),
        ({"active_key": {"$type": "string", "$eq": "0::k"}}, []),
        ({"status": "running", "lease_until": {"$lt": T0}}, [("lease_until", 1)]),
        ({}, newest),
        ({"status": {"$in": ["pending", "failed"]}}, newest),
        ({"type": "t1"}, newest),
        ({"type": {"$in": ["t0", "t2"]}, "status": "pending"}, newest),
        ({"created_by": {"$eq": "u1"}}, newest),
        ({"project_id": {"$in": ["p1"]}}, newest),
        ({"updated_at": {"$gte": T0}}, newest),
        ({"idempotency_key": {"$type": "string", "$eq": "k"}}, []),
        ({"queue": {"$in": ["bulk"]}}, newest),
        ({"queue": {"$in": ["default", None]}}, newest),
        ({"status": {"$in": ["pending", "running"]}, "queue": {"$in": ["bulk"]}}, []),
        ({"status": {"$in": ["completed", "failed"]}, "completed_at": {"$lt": T0}}, []),
    ]
    for query, sort in shapes:
        cursor = wire_db["tasks"].find(query)
        if sort:
            cursor = cursor.sort(sort)
        explained = await cursor.limit(10).explain()
        stages = _stages(explained["queryPlanner"]["winningPlan"], [])
        assert "COLLSCAN" not in stages, (query, stages)
