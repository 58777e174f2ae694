"""The AWS provider against moto in server mode: real HTTP, real SigV4 signing, botocore's
paginators and retries; faults injected by a small proxy in front of moto."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

pytest.importorskip("aiobotocore", reason="the aws extra is not installed")

from cam_tasks.assets import ProviderRegistry, ScopeDeniedError
from cam_tasks.assets.aws import AWS_ASSET_TYPES, AwsAssetProvider
from cam_tasks.domain import ManualClock, PermanentError, RetryableError
from cam_tasks.executor import TaskContext
from cam_tasks.executor.discover_assets import DiscoverAssetsExecutor
from cam_tasks.executor.sync_assets import SyncAssetsExecutor
from cam_tasks.repository import MemoryAssetInventory
from tests.assets import aws_cloud
from tests.assets.aws_cloud import ACCOUNT_ID, REGIONS, Faults

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def moto(moto_url: str) -> str:
    aws_cloud.reset(moto_url)
    return moto_url


@pytest.fixture
async def proxy(moto: str) -> AsyncIterator[tuple[str, Faults]]:
    faults = Faults()
    server = TestServer(aws_cloud.fault_proxy(moto, faults), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), faults
    finally:
        await server.close()


def provider(url: str, **options: Any) -> AwsAssetProvider:
    options.setdefault("regions", list(REGIONS))
    return AwsAssetProvider("aws", endpoint_url=url, session_factory=aws_cloud.session, **options)


def context(task_type: str = "sync_assets") -> TaskContext:
    return TaskContext(task_id="t-1", task_type=task_type, attempt=1, max_attempts=3, run_at=NOW)


async def sync(p: AwsAssetProvider, inventory: MemoryAssetInventory, ctx: TaskContext) -> Any:
    executor = SyncAssetsExecutor(ProviderRegistry([p]), inventory, ManualClock(NOW))
    params = executor.params_model.model_validate(
        {"provider": "aws", "account_id": ACCOUNT_ID, "asset_types": sorted(AWS_ASSET_TYPES)}
    )
    return await executor.execute(params, ctx)


async def test_sync_adds_every_type_in_both_regions_counts_changes_and_discover_finds_them(
    moto: str,
) -> None:
    ids = {region: aws_cloud.create_every_type(moto, region) for region in REGIONS}
    inventory = MemoryAssetInventory()
    p = provider(moto)

    first = await sync(p, inventory, context())

    found = {(s["region"], s["asset_type"]): s["total_count"] for s in first["by_scope"]}
    assert all(found[(region, t)] >= 1 for region in REGIONS for t in AWS_ASSET_TYPES), found
    assert first["added_count"] == first["total_count"] == sum(found.values())
    assert first["skipped"] == []
    web = (await inventory.find(asset_type="ec2", region="us-east-1"))[0]
    assert [(a.name, a.attributes["state"], a.attributes["instance_type"]) for a in web] == [
        ("web-us-east-1", "running", "t3.micro")
    ]
    lambdas = (await inventory.find(asset_type="lambda", region="eu-west-1"))[0]
    assert [(a.name, a.attributes["tags"]) for a in lambdas] == [("resize", {"team": "media"})]

    # One of each change: a new group, an instance stopped and retagged, a bucket deleted.
    east = aws_cloud.client(moto, "ec2", "us-east-1")
    east.create_security_group(GroupName="new", Description="new", VpcId=ids["us-east-1"]["vpc"])
    east.stop_instances(InstanceIds=[ids["us-east-1"]["instance"]])
    east.create_tags(Resources=[ids["us-east-1"]["instance"]], Tags=[{"Key": "env", "Value": "p"}])
    aws_cloud.client(moto, "s3", "eu-west-1").delete_bucket(Bucket=ids["eu-west-1"]["bucket"])

    second = await sync(p, inventory, context())

    assert (
        second["added_count"],
        second["updated_count"],
        second["removed_count"],
        second["unchanged_count"],
    ) == (1, 1, 1, first["total_count"] - 2)
    web = (await inventory.find(asset_type="ec2", region="us-east-1"))[0]
    assert web[0].attributes["state"] == "stopped"
    assert web[0].attributes["tags"] == {"Name": "web-us-east-1", "env": "p"}

    # Discovery with the account's regions from EC2 DescribeRegions finds both, every type.
    discovering = provider(moto, regions=None)
    assert set(REGIONS) <= set(await discovering.regions(ACCOUNT_ID))
    executor = DiscoverAssetsExecutor(ProviderRegistry([discovering]), inventory, ManualClock(NOW))
    params = executor.params_model.model_validate(
        {"provider": "aws", "account_id": ACCOUNT_ID, "regions": list(REGIONS)}
    )
    found = await executor.execute(params, context("discover_assets"))
    assert set(found["regions"]) == set(REGIONS)
    assert found["asset_types"] == sorted(AWS_ASSET_TYPES)
    assert found["added_count"] == found["removed_count"] == 0


async def test_throttling_is_retried_inside_the_page(proxy: tuple[str, Faults], moto: str) -> None:
    url, faults = proxy
    aws_cloud.create_every_type(moto, "eu-west-1")
    faults.throttle[("ec2", "eu-west-1")] = 2
    p = provider(url, max_attempts=3)
    pages = [page async for page in p.list_assets(ACCOUNT_ID, "eu-west-1", "ec2")]
    assert [a.name for page in pages for a in page] == ["web-eu-west-1"]
    assert faults.seen[("ec2", "eu-west-1")] == 3
    assert faults.throttle[("ec2", "eu-west-1")] == 0


async def test_throttling_beyond_the_attempts_is_a_retryable_task_error(
    proxy: tuple[str, Faults],
) -> None:
    url, faults = proxy
    faults.throttle[("rds", "us-east-1")] = 10
    p = provider(url, max_attempts=2)
    with pytest.raises(RetryableError, match="Throttling"):
        _ = [page async for page in p.list_assets(ACCOUNT_ID, "us-east-1", "rds")]
    assert faults.seen[("rds", "us-east-1")] == 2, faults.log


async def test_a_denied_service_is_reported_as_skipped_and_the_rest_is_synced(
    proxy: tuple[str, Faults], moto: str
) -> None:
    url, faults = proxy
    for region in REGIONS:
        aws_cloud.create_every_type(moto, region)
    faults.deny.add("lambda")
    p = provider(url)
    with pytest.raises(ScopeDeniedError):
        _ = [page async for page in p.list_assets(ACCOUNT_ID, "us-east-1", "lambda")]

    result = await sync(p, MemoryAssetInventory(), context())

    assert result["skipped"] == [
        {
            "region": region,
            "asset_type": "lambda",
            "reason": f"lambda in {region}: AccessDeniedException",
        }
        for region in REGIONS
    ]
    assert {s["asset_type"] for s in result["by_scope"]} == AWS_ASSET_TYPES - {"lambda"}
    assert result["total_count"] > 0


async def test_when_every_scope_is_denied_the_task_fails(proxy: tuple[str, Faults]) -> None:
    url, faults = proxy
    faults.deny.update({"ec2", "rds", "s3", "elasticloadbalancing", "lambda"})
    with pytest.raises(PermanentError, match="every scope was denied"):
        await sync(provider(url), MemoryAssetInventory(), context())


async def test_no_credential_appears_in_results_or_errors(proxy: tuple[str, Faults]) -> None:
    url, faults = proxy
    faults.deny.add("ec2")
    with pytest.raises(ScopeDeniedError) as denied:
        _ = [page async for page in provider(url).list_assets(ACCOUNT_ID, "us-east-1", "vpc")]
    assert "testing" not in str(denied.value)
    assert "testing" not in repr(provider(url))


async def test_a_role_is_assumed_per_account_once_while_its_credentials_last(
    proxy: tuple[str, Faults], moto: str
) -> None:
    url, faults = proxy
    aws_cloud.create_every_type(moto, "us-east-1")
    p = provider(url, role_arn="arn:aws:iam::{account_id}:role/CamReadOnly")
    for asset_type in ("ec2", "vpc"):
        assets = [
            a async for page in p.list_assets(ACCOUNT_ID, "us-east-1", asset_type) for a in page
        ]
        assert assets, asset_type
    assert faults.seen[("sts", "us-east-1")] == 1
