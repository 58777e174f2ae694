"""What every asset provider does, whatever the cloud: the same scenarios run against the static
provider, the AWS provider (moto in server mode) and the Alibaba Cloud provider (the fake)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from cam_tasks.assets import ProviderRegistry, provider_kind
from cam_tasks.domain import ManualClock
from cam_tasks.executor import TaskContext
from cam_tasks.executor.sync_assets import SyncAssetsExecutor
from cam_tasks.repository import MemoryAssetInventory
from tests.assets.clouds import AliyunCloud, AwsCloud, Cloud, StaticCloud

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(params=["static", "aws", "aliyun"])
async def cloud(request: pytest.FixtureRequest) -> AsyncIterator[Cloud]:
    if request.param == "static":
        yield StaticCloud()
    elif request.param == "aws":
        pytest.importorskip("aiobotocore", reason="the aws extra is not installed")
        from tests.assets import aws_cloud

        url = request.getfixturevalue("moto_url")
        aws_cloud.reset(url)
        yield AwsCloud(url)
    else:
        pytest.importorskip("alibabacloud_ecs20140526", reason="the aliyun extra is missing")
        from tests.assets.aliyun_fake import AliyunFake

        fake = AliyunFake(regions=list(AliyunCloud.regions))
        server = TestServer(fake.app(), host="127.0.0.1")
        await server.start_server()
        try:
            yield AliyunCloud(fake, str(server.make_url("")).rstrip("/"))
        finally:
            await server.close()


async def sync(cloud: Cloud, inventory: MemoryAssetInventory) -> dict[str, Any]:
    provider = cloud.provider()
    executor = SyncAssetsExecutor(ProviderRegistry([provider]), inventory, ManualClock(NOW))
    params = executor.params_model.model_validate(
        {
            "provider": provider.name,
            "account_id": cloud.account_id,
            "asset_types": [cloud.asset_type],
            "regions": list(cloud.regions),
        }
    )
    ctx = TaskContext(task_id="t", task_type="sync_assets", attempt=1, max_attempts=1, run_at=NOW)
    result: dict[str, Any] = await executor.execute(params, ctx)
    assert ctx.progress.percent == 100
    return result


def counts(result: dict[str, Any]) -> tuple[int, int, int, int]:
    return (
        result["added_count"],
        result["updated_count"],
        result["unchanged_count"],
        result["removed_count"],
    )


async def test_it_names_its_kind_and_its_asset_types(cloud: Cloud) -> None:
    provider = cloud.provider()
    assert provider_kind(provider) in {"static", "aws", "aliyun"}
    assert cloud.asset_type in provider.asset_types


async def test_every_listed_asset_carries_its_scope_and_a_name(cloud: Cloud) -> None:
    made = {cloud.create(cloud.regions[0], f"web-{n}") for n in range(3)}
    provider = cloud.provider()
    listed = [
        asset
        async for page in provider.list_assets(cloud.account_id, cloud.regions[0], cloud.asset_type)
        for asset in page
    ]
    assert made <= {a.asset_id for a in listed}
    assert {(a.region, a.asset_type) for a in listed} == {(cloud.regions[0], cloud.asset_type)}
    assert sorted(a.name for a in listed if a.asset_id in made) == ["web-0", "web-1", "web-2"]


async def test_a_first_sync_adds_everything_and_a_second_finds_it_unchanged(cloud: Cloud) -> None:
    for n in range(3):
        cloud.create(cloud.regions[0], f"web-{n}")
    cloud.create(cloud.regions[1], "db")
    inventory = MemoryAssetInventory()

    first = await sync(cloud, inventory)
    second = await sync(cloud, inventory)

    total = first["total_count"]
    assert total >= 4
    assert counts(first) == (total, 0, 0, 0)
    assert counts(second) == (0, 0, total, 0)
    assert first["skipped"] == second["skipped"] == []


async def test_created_changed_and_deleted_assets_are_counted_exactly(cloud: Cloud) -> None:
    kept = cloud.create(cloud.regions[0], "web-1")
    gone = cloud.create(cloud.regions[1], "web-2")
    inventory = MemoryAssetInventory()
    first = await sync(cloud, inventory)

    cloud.create(cloud.regions[1], "web-3")
    cloud.retag(cloud.regions[0], kept)
    cloud.delete(cloud.regions[1], gone)
    second = await sync(cloud, inventory)

    assert counts(second) == (1, 1, first["total_count"] - 2, 1)
    stored = {a.asset_id: a for a in (await inventory.find(asset_type=cloud.asset_type))[0]}
    assert gone not in stored
    assert stored[kept].attributes["tags"] == {"env": "prod"} | (
        {"Name": "web-1"} if "Name" in stored[kept].attributes["tags"] else {}
    )
