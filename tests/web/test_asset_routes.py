"""GET /assets and GET /assets/summary: the inventory real syncs wrote, read over HTTP, scoped
by project like task lists, filtered, paged, sorted and searched without ever letting a value
become a database operator."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest

from cam_tasks.assets import ProviderRegistry, StaticAssetProvider
from cam_tasks.domain import ManualClock
from cam_tasks.executor import TaskContext
from cam_tasks.executor.sync_assets import SyncAssetsExecutor
from cam_tasks.repository import MemoryAssetInventory
from cam_tasks.repository.memory import MemoryTaskRepository
from cam_tasks.service import AssetService, TaskService
from tests.security.support import ADMIN, ALICE, BOB, authenticator, bearer
from tests.web.helpers import (
    PREFIX,
    START,
    Client,
    MakeClient,
    assert_error,
    assert_success,
    make_registry,
)

SYNCED_AT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def provider() -> StaticAssetProvider:
    with resources.as_file(resources.files("cam_tasks") / "data" / "sample_inventory.toml") as path:
        return StaticAssetProvider("aliyun", path)


async def sync(
    inventory: MemoryAssetInventory, task_id: str, project_id: str, **params: Any
) -> None:
    """Run the real sync_assets executor as the dispatcher would for a task of the project."""
    executor = SyncAssetsExecutor(ProviderRegistry([provider()]), inventory, ManualClock(SYNCED_AT))
    ctx = TaskContext(
        task_id=task_id,
        task_type="sync_assets",
        attempt=1,
        max_attempts=1,
        run_at=SYNCED_AT,
        project_id=project_id,
    )
    await executor.execute(executor.params_model.model_validate(params), ctx)


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    inventory = MemoryAssetInventory()
    # project-a synced ECS in Shenzhen (8 assets), project-b RDS in Beijing (2 assets).
    await sync(
        inventory,
        "task-a",
        "project-a",
        provider="aliyun",
        account_id="123",
        regions=["cn-shenzhen"],
        asset_types=["ecs"],
    )
    await sync(
        inventory,
        "task-b",
        "project-b",
        provider="aliyun",
        account_id="123",
        regions=["cn-beijing"],
        asset_types=["rds"],
    )
    clock = ManualClock(START)
    service = TaskService(MemoryTaskRepository(clock=clock), make_registry(), clock=clock)
    return await make_client(service, authenticate=authenticator(), assets=AssetService(inventory))


async def assets(client: Client, who: Any, **query: str) -> Any:
    response = await client.get(f"{PREFIX}/assets", params=query, headers=bearer(who))
    return await assert_success(response)


async def test_each_project_sees_the_assets_its_tasks_synced_and_an_admin_all(
    client: Client,
) -> None:
    mine = await assets(client, ALICE)
    assert mine["total"] == 8
    assert {a["type"] for a in mine["assets"]} == {"ecs"}
    first = mine["assets"][0]
    assert set(first) == {
        "provider",
        "account_id",
        "region",
        "type",
        "asset_id",
        "name",
        "attributes",
        "synced_at",
        "last_sync",
    }
    assert first["last_sync"] == {"task_id": "task-a", "at": "2026-03-01T12:30:00.000Z"}
    assert (await assets(client, BOB))["total"] == 2
    assert (await assets(client, ADMIN))["total"] == 10


async def test_filters_page_and_sort(client: Client) -> None:
    every = await assets(client, ADMIN, sort="asset_id", limit="100")
    ids = [a["asset_id"] for a in every["assets"]]
    assert ids == sorted(ids)
    backwards = await assets(client, ADMIN, sort="-asset_id", limit="100")
    assert [a["asset_id"] for a in backwards["assets"]] == ids[::-1]
    page = await assets(client, ADMIN, sort="asset_id", offset="2", limit="3")
    assert ([a["asset_id"] for a in page["assets"]], page["total"]) == (ids[2:5], 10)
    rds = await assets(client, ADMIN, type="rds", region="cn-beijing", provider="aliyun")
    assert rds["total"] == 2
    assert (await assets(client, ADMIN, account_id="nobody"))["total"] == 0


async def test_q_is_a_literal_case_insensitive_match_on_name_or_id(client: Client) -> None:
    every = (await assets(client, ADMIN, limit="100"))["assets"]
    target = every[0]
    by_name = await assets(client, ADMIN, q=target["name"].upper())
    assert target["asset_id"] in [a["asset_id"] for a in by_name["assets"]]
    by_id = await assets(client, ADMIN, q=target["asset_id"][-4:].upper())
    assert target["asset_id"] in [a["asset_id"] for a in by_id["assets"]]
    for text in (".*", "^", '{"$ne": null}', "[a-z]"):
        assert (await assets(client, ADMIN, q=text))["total"] == 0, text


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ({"q": "x" * 101}, ["query", "q"]),
        ({"q": ""}, ["query", "q"]),
        ({"sort": "attributes"}, ["query", "sort"]),
        ({"limit": "0"}, ["query", "limit"]),
        ({"provider[$ne]": "x"}, ["query"]),
    ],
)
async def test_bad_queries_are_400_with_details(
    client: Client, query: dict[str, str], loc: list[str]
) -> None:
    response = await client.get(f"{PREFIX}/assets", params=query, headers=bearer(ADMIN))
    data = await assert_error(response, 400, "bad_request")
    assert loc in [detail["loc"] for detail in data["details"]]


async def test_summary_counts_what_the_caller_sees_and_names_the_latest_sync(
    client: Client,
) -> None:
    response = await client.get(f"{PREFIX}/assets/summary", headers=bearer(ADMIN))
    every = await assert_success(response)
    assert every["total"] == 10
    assert every["by_provider"] == [{"value": "aliyun", "count": 10}]
    assert every["by_account"] == [{"value": "123", "count": 10}]
    assert every["by_type"] == [{"value": "ecs", "count": 8}, {"value": "rds", "count": 2}]
    assert every["by_region"] == [
        {"value": "cn-beijing", "count": 2},
        {"value": "cn-shenzhen", "count": 8},
    ]
    # Both syncs ran at one instant: ties go to the greater task id.
    assert every["last_sync"] == {"task_id": "task-b", "at": "2026-03-01T12:30:00.000Z"}

    response = await client.get(f"{PREFIX}/assets/summary", headers=bearer(ALICE))
    mine = await assert_success(response)
    assert (mine["total"], mine["last_sync"]["task_id"]) == (8, "task-a")
    response = await client.get(
        f"{PREFIX}/assets/summary", params={"type": "rds"}, headers=bearer(ALICE)
    )
    assert (await assert_success(response))["total"] == 0


async def test_both_need_authentication_and_refuse_paging_keys_on_the_summary(
    client: Client,
) -> None:
    await assert_error(await client.get(f"{PREFIX}/assets"), 401, "unauthorized")
    await assert_error(await client.get(f"{PREFIX}/assets/summary"), 401, "unauthorized")
    response = await client.get(
        f"{PREFIX}/assets/summary", params={"limit": "5"}, headers=bearer(ADMIN)
    )
    await assert_error(response, 400, "bad_request")
