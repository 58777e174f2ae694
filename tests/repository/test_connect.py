"""What each store URI opens, and that the Mongo stores run on a Motor-shaped database
(mongomock-motor) and on PyMongo async (wire) alike."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from cam_tasks.domain import (
    AssetScope,
    ConfigurationError,
    TaskStatus,
    new_task,
)
from cam_tasks.repository import (
    MemoryAssetInventory,
    MemoryTaskRepository,
    MongoAssetInventory,
    MongoTaskRepository,
    Stores,
    open_stores,
    stores_for_database,
)
from tests.support.network import free_port

T0 = datetime(2100, 1, 1, tzinfo=UTC)
SCOPE = AssetScope(provider="aliyun", account_id="1", region="cn-shenzhen", asset_type="ecs")


async def _run_one_task(stores: Stores) -> None:
    """Initialize, then submit → claim → complete one task and read the inventory."""
    await stores.tasks.initialize()
    await stores.inventory.initialize()
    task = await stores.tasks.insert(new_task(task_type="sync", params={"n": 1}, now=T0))
    claimed = await stores.tasks.claim(types=["sync"], owner="w", now=T0, lease_s=30)
    assert claimed is not None
    assert claimed.id == task.id
    done = await stores.tasks.complete(claimed.lease, now=T0, result={"ok": True})
    assert done.status is TaskStatus.COMPLETED
    assert await stores.tasks.get(task.id) == done
    assert await stores.inventory.fingerprints(SCOPE) == {}


async def test_memory_uri_opens_the_in_process_stores() -> None:
    stores = open_stores("memory://", retention_s=60)
    assert stores.backend == "memory"
    assert isinstance(stores.tasks, MemoryTaskRepository)
    assert isinstance(stores.inventory, MemoryAssetInventory)
    await _run_one_task(stores)
    await stores.close()
    await stores.close()


@pytest.mark.parametrize("uri", ["mongomock://", "mongomock:///custom"])
async def test_mongomock_uri_opens_the_mongo_stores_in_process(uri: str) -> None:
    stores = open_stores(uri)
    assert stores.backend == "mongomock"
    assert isinstance(stores.tasks, MongoTaskRepository)
    assert isinstance(stores.inventory, MongoAssetInventory)
    await _run_one_task(stores)
    await stores.close()
    await stores.close()


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("mongodb://127.0.0.1:1/?directConnection=true", "cam_tasks"),
        ("mongodb://127.0.0.1:1/inventory_db?directConnection=true", "inventory_db"),
    ],
)
async def test_mongodb_uri_takes_the_database_from_its_path(uri: str, expected: str) -> None:
    stores = open_stores(uri, server_selection_timeout_s=0.1)
    try:
        assert stores.backend == "mongodb"
        assert isinstance(stores.tasks, MongoTaskRepository)
        assert stores.tasks._database.name == expected
    finally:
        await stores.close()
        await stores.close()


@pytest.mark.parametrize("uri", ["redis://localhost", "tasks.db", "", "memory:/"])
async def test_an_unknown_scheme_is_a_configuration_error(uri: str) -> None:
    with pytest.raises(ConfigurationError, match=r"memory://, mongomock://, mongodb://"):
        open_stores(uri)


async def test_a_malformed_mongodb_uri_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="mongodb"):
        open_stores("mongodb://user:p@ss@host:notaport/")


async def test_stores_for_a_motor_shaped_database(mongomock_db: Any) -> None:
    """mongomock-motor mimics Motor's API; the repository uses only what both share."""
    stores = stores_for_database(mongomock_db)
    assert stores.backend == "mongomock"
    await _run_one_task(stores)
    await stores.close()
    # The host's handle stays usable: closing the stores did not close its client.
    assert await mongomock_db["tasks"].count_documents({}) == 1


async def test_stores_for_a_pymongo_async_database(wire_db: Any) -> None:
    stores = stores_for_database(wire_db, retention_s=60)
    assert stores.backend == "mongodb"
    await _run_one_task(stores)
    await stores.close()
    assert await wire_db["tasks"].count_documents({}) == 1


# -- refused connections ------------------------------------------------------------------------
# The bounds differ by orders of magnitude, so which one applied shows without timing: the guard
# (60 s) would fire first if the 600 s bound were the one the driver waited for. It runs in its
# own process: PyMongo's async monitor may leave the socket of a connection attempt that close()
# cancelled unclosed (PYTHON-5867), a ResourceWarning this suite's warning filter would turn
# into a failure of whichever test the garbage collector happens to run in.

_REFUSED = """
import asyncio, sys
from cam_tasks.domain import DatabaseUnavailableError
from cam_tasks.repository import open_stores

async def main() -> None:
    stores = open_stores(sys.argv[1], server_selection_timeout_s=0.2, operation_timeout_s=600)
    try:
        await stores.tasks.get("no-such-task")
    except DatabaseUnavailableError as exc:
        print("unavailable:", exc)
    finally:
        await stores.close()

asyncio.run(main())
"""


async def test_refused_connections_answer_after_server_selection_not_the_operation_bound() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _REFUSED,
        f"mongodb://127.0.0.1:{free_port()}/cam",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    assert out.decode().startswith("unavailable: database unavailable: ServerSelectionTimeoutError")
