"""sync_assets, run for real: the static provider over the sample file, the memory inventory,
a real TaskContext."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest

from cam_tasks.assets import AssetPage, ProviderRegistry, ScopeDeniedError, StaticAssetProvider
from cam_tasks.domain import (
    Asset,
    ConfigurationError,
    InvalidParamsError,
    ManualClock,
    PermanentError,
)
from cam_tasks.executor import ExecutorRegistry, TaskContext
from cam_tasks.executor.discover_assets import DiscoverAssetsExecutor
from cam_tasks.executor.sync_assets import SyncAssetsExecutor, SyncAssetsParams
from cam_tasks.repository import MemoryAssetInventory

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def sample_provider(**options: Any) -> StaticAssetProvider:
    with resources.as_file(resources.files("cam_tasks") / "data" / "sample_inventory.toml") as path:
        return StaticAssetProvider("aliyun", path, **options)


class Observed:
    """Wraps a provider to see the task from the provider's side: the progress the task showed
    when each listing started, and optionally a pause before page ``pause_at[1]`` of scope
    ``pause_at[0]`` (a slow cloud API) so that a test can cancel the task mid-sync."""

    def __init__(
        self,
        inner: StaticAssetProvider,
        ctx: TaskContext,
        pause_at: tuple[tuple[str, str], int] | None = None,
    ) -> None:
        self.inner, self.ctx, self.pause_at = inner, ctx, pause_at
        self.name, self.asset_types = inner.name, inner.asset_types
        self.listings: list[tuple[float, str, int | None, int | None]] = []
        self.step_names: list[str | None] = []
        self.paused = asyncio.Event()

    async def regions(self, account_id: str) -> list[str]:
        return await self.inner.regions(account_id)

    async def list_assets(
        self, account_id: str, region: str, asset_type: str
    ) -> AsyncIterator[list[Asset]]:
        p = self.ctx.progress
        self.listings.append((p.percent, p.message, p.step, p.total_steps))
        self.step_names.append(p.step_name)
        number = 0
        async for page in self.inner.list_assets(account_id, region, asset_type):
            if self.pause_at == ((region, asset_type), number):
                self.paused.set()
                await asyncio.Event().wait()  # until cancelled
            yield page
            number += 1


def context() -> TaskContext:
    return TaskContext(
        task_id="t-1", task_type="sync_assets", attempt=1, max_attempts=4, run_at=NOW
    )


def build(
    provider: Any = None, *, batch_size: int = 1000
) -> tuple[SyncAssetsExecutor, MemoryAssetInventory, ExecutorRegistry]:
    inventory = MemoryAssetInventory()
    executor = SyncAssetsExecutor(
        ProviderRegistry([provider or sample_provider()]),
        inventory,
        ManualClock(NOW),
        batch_size=batch_size,
    )
    return executor, inventory, ExecutorRegistry([executor])


async def run(executor: SyncAssetsExecutor, ctx: TaskContext, **params: Any) -> dict[str, Any]:
    parsed = executor.params_model.model_validate(params)
    return await executor.execute(parsed, ctx)


# -- parameters -----------------------------------------------------------------------------


def test_params_are_parsed_and_a_numeric_account_id_becomes_a_string() -> None:
    _, _, registry = build()
    params = registry.validate(
        "sync_assets", {"provider": "aliyun", "asset_types": ["ecs", "rds"], "account_id": 123}
    )
    assert isinstance(params, SyncAssetsParams)
    assert params.model_dump() == {
        "provider": "aliyun",
        "account_id": "123",
        "regions": None,
        "asset_types": ["ecs", "rds"],
    }
    assert type(params).__name__ == "SyncAssetsParams"


def details(registry: ExecutorRegistry, params: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(InvalidParamsError) as info:
        registry.validate("sync_assets", params)
    return info.value.details


VALID = {"provider": "aliyun", "asset_types": ["ecs"], "account_id": "123"}


def test_an_unknown_provider_is_a_field_error_listing_the_known_ones() -> None:
    _, _, registry = build()
    [error] = details(registry, {**VALID, "provider": "aws"})
    assert error["loc"] == ["params", "provider"]
    assert error["type"] == "unknown_provider"
    assert error["msg"] == "unknown provider 'aws'; known providers: aliyun"


def test_an_asset_type_the_provider_cannot_list_is_a_field_error() -> None:
    _, _, registry = build()
    [error] = details(registry, {**VALID, "asset_types": ["ecs", "ec2"]})
    assert error["loc"] == ["params", "asset_types"]
    assert error["type"] == "unknown_asset_type"
    assert error["msg"] == (
        "unknown asset type(s) 'ec2' for provider 'aliyun'; supported: ecs, oss, rds, slb"
    )


def test_unknown_fields_are_rejected() -> None:
    _, _, registry = build()
    [error] = details(registry, {**VALID, "access_key": "secret"})
    assert (error["loc"], error["type"]) == (["params", "access_key"], "extra_forbidden")
    assert "secret" not in str(error)


@pytest.mark.parametrize(
    ("change", "loc", "kind"),
    [
        ({"asset_types": []}, ["params", "asset_types"], "too_short"),
        ({"asset_types": ["ecs", "ecs"]}, ["params", "asset_types"], "unique_items"),
        ({"regions": []}, ["params", "regions"], "too_short"),
        ({"regions": ["cn-beijing", "cn-beijing"]}, ["params", "regions"], "unique_items"),
        ({"account_id": ""}, ["params", "account_id"], "string_too_short"),
        ({"account_id": None}, ["params", "account_id"], "string_type"),
    ],
)
def test_malformed_params_are_field_errors(
    change: dict[str, Any], loc: list[str], kind: str
) -> None:
    _, _, registry = build()
    [error] = details(registry, {**VALID, **change})
    assert (error["loc"], error["type"]) == (loc, kind)


def test_a_missing_provider_field_is_reported_once() -> None:
    _, _, registry = build()
    errors = details(registry, {"asset_types": ["ecs"], "account_id": "123"})
    assert [e["loc"] for e in errors] == [["params", "provider"]]


def test_providers_registered_after_the_executor_are_accepted() -> None:
    providers = ProviderRegistry()
    executor = SyncAssetsExecutor(providers, MemoryAssetInventory(), ManualClock(NOW))
    providers.register(sample_provider())
    assert ExecutorRegistry([executor]).validate("sync_assets", VALID)


# -- running --------------------------------------------------------------------------------


async def test_syncing_one_scope_adds_its_assets_and_reports_the_result() -> None:
    executor, inventory, _ = build()
    ctx = context()
    result = await run(executor, ctx, **VALID, regions=["cn-shenzhen"])
    counts = {
        "total_count": 8,
        "added_count": 8,
        "updated_count": 0,
        "unchanged_count": 0,
        "removed_count": 0,
    }
    assert result == {
        **counts,
        "regions": ["cn-shenzhen"],
        "asset_types": ["ecs"],
        "by_scope": [{"region": "cn-shenzhen", "asset_type": "ecs", **counts}],
        "skipped": [],
    }
    assert (await inventory.find(provider="aliyun", account_id="123"))[1] == 8
    assert ctx.progress.percent == 100
    assert ctx.progress.message == "Synced 8 assets: 8 added, 0 updated, 0 unchanged, 0 removed"


async def test_without_regions_every_region_of_the_account_is_synced_scope_by_scope() -> None:
    ctx = context()
    observed = Observed(sample_provider(), ctx)
    executor, _, _ = build(observed)
    result = await run(executor, ctx, provider="aliyun", account_id=123, asset_types=["ecs", "rds"])
    assert result["regions"] == ["cn-shenzhen", "cn-beijing", "cn-hangzhou", "cn-shanghai"]
    assert [(s["region"], s["asset_type"], s["total_count"]) for s in result["by_scope"]] == [
        ("cn-shenzhen", "ecs", 8),
        ("cn-shenzhen", "rds", 3),
        ("cn-beijing", "ecs", 6),
        ("cn-beijing", "rds", 2),
        ("cn-hangzhou", "ecs", 10),
        ("cn-hangzhou", "rds", 4),
        ("cn-shanghai", "ecs", 5),
        ("cn-shanghai", "rds", 2),
    ]
    assert result["total_count"] == result["added_count"] == 40
    assert observed.listings[0] == (0.0, "Syncing region cn-shenzhen: ecs 1/8", 1, 8)
    assert observed.listings[2] == (25.0, "Syncing region cn-beijing: ecs 3/8", 3, 8)
    assert observed.listings[7] == (87.5, "Syncing region cn-shanghai: rds 8/8", 8, 8)
    assert observed.step_names[:3] == [
        "Syncing ecs in cn-shenzhen",
        "Syncing rds in cn-shenzhen",
        "Syncing ecs in cn-beijing",
    ]
    final = ctx.progress
    assert (final.percent, final.step, final.total_steps) == (100.0, 8, 8)
    assert final.message == "Synced 40 assets: 40 added, 0 updated, 0 unchanged, 0 removed"


async def test_a_second_sync_finds_everything_unchanged() -> None:
    executor, _, _ = build()
    await run(executor, context(), **VALID)
    ctx = context()
    result = await run(executor, ctx, **VALID)
    assert (result["total_count"], result["unchanged_count"], result["added_count"]) == (29, 29, 0)
    assert ctx.progress.message == "Synced 29 assets: 0 added, 0 updated, 29 unchanged, 0 removed"


async def test_an_unknown_account_fails_permanently() -> None:
    executor, _, _ = build()
    with pytest.raises(PermanentError, match="no account '999'"):
        await run(executor, context(), **{**VALID, "account_id": "999"})


async def test_an_unknown_region_fails_permanently_naming_the_accounts_regions() -> None:
    executor, inventory, _ = build()
    with pytest.raises(PermanentError, match=r"no region 'us-east-1'; its regions: cn-shenzhen"):
        await run(executor, context(), **VALID, regions=["cn-beijing", "us-east-1"])
    assert (await inventory.find())[1] == 0


async def test_a_cancelled_sync_keeps_what_it_synced_as_its_partial_result() -> None:
    ctx = context()
    observed = Observed(sample_provider(page_size=3), ctx, pause_at=(("cn-hangzhou", "ecs"), 2))
    executor, inventory, _ = build(observed, batch_size=4)
    running = asyncio.create_task(
        run(executor, ctx, **VALID, regions=["cn-shenzhen", "cn-hangzhou"])
    )
    await observed.paused.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    # cn-shenzhen: 8 synced. cn-hangzhou: 2 pages (6 assets) received, one batch of 4 written.
    partial = ctx.partial_result
    assert partial["message"] == "12 of 14 assets synced"
    assert (partial["total_count"], partial["added_count"]) == (14, 12)
    assert [(s["region"], s["total_count"], s["added_count"]) for s in partial["by_scope"]] == [
        ("cn-shenzhen", 8, 8),
        ("cn-hangzhou", 6, 4),
    ]
    assert (await inventory.find(account_id="123"))[1] == 12
    assert ctx.progress.message == "Syncing cn-hangzhou: ecs page 2 · 14 assets"


def test_repeated_items_are_named_in_the_error() -> None:
    _, _, registry = build()
    [error] = details(registry, {**VALID, "asset_types": ["ecs", "rds", "ecs"]})
    assert error["msg"] == "items must be unique; repeated: 'ecs'"


# -- the provider registry these params are checked against ---------------------------------
# (Its natural home is tests/assets/test_registry.py; kept here with the validation it serves.)


def test_the_provider_registry_lists_and_finds_its_providers() -> None:
    aliyun = sample_provider()
    other = StaticAssetProvider("aws", {"accounts": {}})
    providers = ProviderRegistry([other, aliyun])
    assert providers.names == ("aliyun", "aws")
    assert list(providers) == [other, aliyun]
    assert len(providers) == 2
    assert "aws" in providers
    assert providers.get("aliyun") is aliyun


def test_the_provider_registry_refuses_duplicates_and_malformed_providers() -> None:
    providers = ProviderRegistry([sample_provider()])
    with pytest.raises(ConfigurationError, match="registered twice"):
        providers.register(sample_provider())

    class Nameless:
        asset_types = frozenset({"vm"})

    with pytest.raises(ConfigurationError, match="no provider name"):
        providers.register(Nameless())  # type: ignore[arg-type]

    class ListsNothing:
        name = "broken"
        asset_types = {"vm"}  # a set, not a frozenset

    with pytest.raises(ConfigurationError, match="asset_types must be a frozenset"):
        providers.register(ListsNothing())  # type: ignore[arg-type]


def test_looking_up_an_unknown_provider_names_the_known_ones() -> None:
    with pytest.raises(
        ConfigurationError, match="'aws' is not registered; known providers: aliyun"
    ):
        ProviderRegistry([sample_provider()]).get("aws")


class PagedProvider:
    """Two regions of ``vm``: 3 pages of 2 that tell the scope's total (as Alibaba Cloud's
    TotalCount does) in r1, plain lists without a total in r2; records the task's progress as
    each page is asked for."""

    name = "paged"
    asset_types = frozenset({"vm"})

    def __init__(self, ctx: TaskContext) -> None:
        self.ctx = ctx
        self.seen: list[tuple[float, str]] = []

    async def regions(self, account_id: str) -> list[str]:
        return ["r1", "r2"]

    async def list_assets(
        self, account_id: str, region: str, asset_type: str
    ) -> AsyncIterator[list[Asset]]:
        for number in range(3):
            page = [
                Asset(asset_id=f"{region}-{number}-{n}", asset_type="vm", region=region)
                for n in range(2)
            ]
            yield AssetPage(page, scope_total=6) if region == "r1" else page
            self.seen.append((self.ctx.progress.percent, self.ctx.progress.message))


async def test_progress_is_reported_per_page_with_counts_and_a_percent_from_totals() -> None:
    ctx = context()
    provider = PagedProvider(ctx)
    executor, _, _ = build(provider)
    params = executor.params_model.model_validate(
        {"provider": "paged", "account_id": "1", "asset_types": ["vm"]}
    )
    await executor.execute(params, ctx)
    assert provider.seen == [
        (pytest.approx(100 / 6, abs=0.05), "Syncing r1: vm page 1 · 2 assets"),
        (pytest.approx(200 / 6, abs=0.05), "Syncing r1: vm page 2 · 4 assets"),
        (50.0, "Syncing r1: vm page 3 · 6 assets"),
        (50.0, "Syncing r2: vm page 1 · 8 assets"),  # no total: the percent waits
        (50.0, "Syncing r2: vm page 2 · 10 assets"),
        (50.0, "Syncing r2: vm page 3 · 12 assets"),
    ]
    assert ctx.progress.percent == 100


async def test_a_denied_scope_is_skipped_and_only_all_denied_fails() -> None:
    class HalfDenied(PagedProvider):
        name = "half"

        def __init__(self, ctx: TaskContext, denied: set[str]) -> None:
            super().__init__(ctx)
            self.denied = denied

        async def list_assets(
            self, account_id: str, region: str, asset_type: str
        ) -> AsyncIterator[list[Asset]]:
            if region in self.denied:
                raise ScopeDeniedError(f"vm in {region}: AccessDenied")
            async for page in super().list_assets(account_id, region, asset_type):
                yield page

    params = {"provider": "half", "account_id": "1", "asset_types": ["vm"]}
    ctx = context()
    executor, inventory, _ = build(HalfDenied(ctx, {"r2"}))
    result = await executor.execute(executor.params_model.model_validate(params), ctx)
    assert result["skipped"] == [
        {"region": "r2", "asset_type": "vm", "reason": "vm in r2: AccessDenied"}
    ]
    assert result["added_count"] == 6
    assert (await inventory.find(region="r2"))[1] == 0

    ctx = context()
    executor, _, _ = build(HalfDenied(ctx, {"r1", "r2"}))
    with pytest.raises(PermanentError, match="every scope was denied: vm in r1"):
        await executor.execute(executor.params_model.model_validate(params), ctx)


def test_the_asset_executors_key_on_provider_and_account() -> None:
    providers = ProviderRegistry([sample_provider()])
    inventory, clock = MemoryAssetInventory(), ManualClock(NOW)
    registry = ExecutorRegistry(
        [
            SyncAssetsExecutor(providers, inventory, clock),
            DiscoverAssetsExecutor(providers, inventory, clock),
        ]
    )
    for spec in registry:
        body: dict[str, Any] = {"provider": "aliyun", "account_id": 123}
        if spec.type == "sync_assets":
            body["asset_types"] = ["ecs"]
        params = spec.params_model.model_validate(body)
        assert spec.unique_key(params) == f"{spec.type}:aliyun:123"
        assert spec.concurrency_key(params) == "assets:aliyun:123"
        assert spec.concurrency_limits == {"assets:*": 1}


def test_the_params_schema_names_the_registered_providers_and_their_asset_types() -> None:
    executor, _, _ = build()
    schema = executor.params_model.model_json_schema()
    assert schema["properties"]["provider"]["enum"] == ["aliyun"]
    assert schema["properties"]["asset_types"]["items"]["enum"] == ["ecs", "oss", "rds", "slb"]
    assert schema["properties"]["asset_types"]["uniqueItems"] is True
    assert {"type": "integer", "minimum": 0, "maximum": 2**53 - 1} in schema["properties"][
        "account_id"
    ]["anyOf"]
    # What the schema allows, validation accepts.
    executor.params_model.model_validate(
        {"provider": "aliyun", "account_id": "1", "asset_types": ["ecs", "oss", "rds", "slb"]}
    )
