"""discover_assets, run for real: the static provider over the sample file, the memory
inventory, a real TaskContext."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest

from cam_tasks.assets import ProviderRegistry, StaticAssetProvider
from cam_tasks.domain import (
    Asset,
    AssetScope,
    InvalidParamsError,
    ManualClock,
    PermanentError,
)
from cam_tasks.executor import ExecutorRegistry, TaskContext
from cam_tasks.executor.discover_assets import DiscoverAssetsExecutor, DiscoverAssetsParams
from cam_tasks.executor.sync_assets import SyncAssetsExecutor
from cam_tasks.repository import MemoryAssetInventory

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def sample_provider(**options: Any) -> StaticAssetProvider:
    with resources.as_file(resources.files("cam_tasks") / "data" / "sample_inventory.toml") as path:
        return StaticAssetProvider("aliyun", path, **options)


class Observed:
    """Wraps a provider to record the task's progress when each listing starts, and to stall
    the first page of ``stall_at`` (a slow cloud API) so that a test can cancel mid-way."""

    def __init__(
        self, inner: StaticAssetProvider, ctx: TaskContext, stall_at: tuple[str, str] | None = None
    ) -> None:
        self.inner, self.ctx, self.stall_at = inner, ctx, stall_at
        self.name, self.asset_types = inner.name, inner.asset_types
        self.messages: list[tuple[float, str]] = []
        self.stalled = asyncio.Event()

    async def regions(self, account_id: str) -> list[str]:
        return await self.inner.regions(account_id)

    async def list_assets(
        self, account_id: str, region: str, asset_type: str
    ) -> AsyncIterator[list[Asset]]:
        self.messages.append((self.ctx.progress.percent, self.ctx.progress.message))
        if (region, asset_type) == self.stall_at:
            self.stalled.set()
            await asyncio.Event().wait()  # until cancelled
        async for page in self.inner.list_assets(account_id, region, asset_type):
            yield page


def context() -> TaskContext:
    return TaskContext(
        task_id="t-2", task_type="discover_assets", attempt=1, max_attempts=4, run_at=NOW
    )


def build(
    provider: Any = None, inventory: MemoryAssetInventory | None = None
) -> tuple[DiscoverAssetsExecutor, MemoryAssetInventory]:
    inventory = inventory or MemoryAssetInventory()
    providers = ProviderRegistry([provider or sample_provider()])
    return DiscoverAssetsExecutor(providers, inventory, ManualClock(NOW)), inventory


async def run(executor: DiscoverAssetsExecutor, ctx: TaskContext, **params: Any) -> dict[str, Any]:
    return await executor.execute(executor.params_model.model_validate(params), ctx)


def test_params_are_provider_account_and_optional_regions() -> None:
    executor, _ = build()
    params = ExecutorRegistry([executor]).validate(
        "discover_assets", {"provider": "aliyun", "account_id": 456}
    )
    assert isinstance(params, DiscoverAssetsParams)
    assert params.model_dump() == {"provider": "aliyun", "account_id": "456", "regions": None}


@pytest.mark.parametrize(
    ("params", "loc", "kind"),
    [
        ({"provider": "aws", "account_id": "1"}, ["params", "provider"], "unknown_provider"),
        (
            {"provider": "aliyun", "account_id": "1", "asset_types": ["ecs"]},
            ["params", "asset_types"],
            "extra_forbidden",
        ),
        ({"provider": "aliyun"}, ["params", "account_id"], "missing"),
    ],
)
def test_invalid_params_are_field_errors(params: dict[str, Any], loc: list[str], kind: str) -> None:
    executor, _ = build()
    with pytest.raises(InvalidParamsError) as info:
        ExecutorRegistry([executor]).validate("discover_assets", params)
    [error] = info.value.details
    assert (error["loc"], error["type"]) == (loc, kind)


async def test_discovery_finds_every_region_and_type_the_account_holds() -> None:
    ctx = context()
    observed = Observed(sample_provider(), ctx)
    executor, inventory = build(observed)
    result = await run(executor, ctx, provider="aliyun", account_id="456")
    assert result == {
        "total_count": 9,
        "added_count": 9,
        "updated_count": 0,
        "unchanged_count": 0,
        "removed_count": 0,
        "regions": ["cn-hangzhou", "cn-beijing"],
        "asset_types": ["ecs", "oss", "rds", "slb"],
        "by_region": {
            "cn-hangzhou": {"ecs": 3, "oss": 1, "rds": 1, "slb": 1},
            "cn-beijing": {"ecs": 2, "oss": 1},
        },
        "skipped": [],
    }
    assert (await inventory.find(account_id="456"))[1] == 9
    assert observed.messages[0] == (0.0, "Discovering region cn-hangzhou: ecs 1/8")
    assert observed.messages[6] == (75.0, "Discovering region cn-beijing: rds 7/8")
    # The last scope's name stays beside step 8 of 8.
    assert (ctx.progress.step, ctx.progress.step_name) == (8, "Discovering slb in cn-beijing")
    assert ctx.progress.percent == 100
    assert ctx.progress.message == (
        "Discovered 9 assets of 4 types in 2 regions: 9 added, 0 updated, 0 unchanged, 0 removed"
    )


async def test_discovery_in_chosen_regions_reports_only_types_found_there() -> None:
    executor, _ = build()
    result = await run(
        executor, context(), provider="aliyun", account_id="123", regions=["cn-shanghai"]
    )
    assert result["regions"] == ["cn-shanghai"]
    assert result["asset_types"] == ["ecs", "oss", "rds"]
    assert result["by_region"] == {"cn-shanghai": {"ecs": 5, "oss": 3, "rds": 2}}


async def test_a_type_that_emptied_loses_its_stored_assets() -> None:
    inventory = MemoryAssetInventory()
    ghost_scope = AssetScope(
        provider="aliyun", account_id="123", region="cn-shanghai", asset_type="slb"
    )
    ghost = Asset(asset_id="lb-gone", asset_type="slb", region="cn-shanghai")
    await inventory.write(ghost_scope, upserts=[ghost], removals=(), now=NOW)
    executor, _ = build(inventory=inventory)
    result = await run(
        executor, context(), provider="aliyun", account_id="123", regions=["cn-shanghai"]
    )
    assert result["removed_count"] == 1
    assert "slb" not in result["asset_types"]
    assert (await inventory.find(asset_type="slb", region="cn-shanghai"))[1] == 0


async def test_discovery_and_sync_share_one_inventory_and_one_way_of_counting() -> None:
    inventory = MemoryAssetInventory()
    providers = ProviderRegistry([sample_provider()])
    discover = DiscoverAssetsExecutor(providers, inventory, ManualClock(NOW))
    sync = SyncAssetsExecutor(providers, inventory, ManualClock(NOW))
    await run(discover, context(), provider="aliyun", account_id="123")
    params = sync.params_model.model_validate(
        {"provider": "aliyun", "account_id": "123", "asset_types": ["ecs", "rds", "slb", "oss"]}
    )
    result = await sync.execute(params, context())
    assert (result["total_count"], result["unchanged_count"]) == (59, 59)


async def test_an_unknown_account_or_region_fails_permanently() -> None:
    executor, _ = build()
    with pytest.raises(PermanentError, match="no account '999'"):
        await run(executor, context(), provider="aliyun", account_id="999")
    with pytest.raises(PermanentError, match="no region 'cn-qingdao'"):
        await run(executor, context(), provider="aliyun", account_id="456", regions=["cn-qingdao"])


async def test_a_cancelled_discovery_keeps_what_it_found_as_its_partial_result() -> None:
    ctx = context()
    observed = Observed(sample_provider(), ctx, stall_at=("cn-beijing", "ecs"))
    executor, _ = build(observed)
    running = asyncio.create_task(run(executor, ctx, provider="aliyun", account_id="456"))
    await observed.stalled.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert ctx.partial_result["message"] == "6 of 6 assets synced"
    assert ctx.partial_result["by_region"] == {
        "cn-hangzhou": {"ecs": 3, "oss": 1, "rds": 1, "slb": 1}
    }
    assert ctx.progress.message == "Discovering region cn-beijing: ecs 5/8"
