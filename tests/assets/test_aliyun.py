"""The Alibaba Cloud provider, through the official SDKs, against the small fake of their APIs:
what the SDK sends (action, region, page), paging, throttling, errors and denied scopes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

pytest.importorskip("alibabacloud_ecs20140526", reason="the aliyun extra is not installed")

from cam_tasks.assets import ProviderRegistry, ScopeDeniedError
from cam_tasks.assets.aliyun import (
    ALIYUN_ASSET_TYPES,
    AliyunAssetProvider,
    AliyunCredentials,
)
from cam_tasks.domain import ManualClock, PermanentError, RetryableError
from cam_tasks.executor import TaskContext
from cam_tasks.executor.discover_assets import DiscoverAssetsExecutor
from cam_tasks.repository import MemoryAssetInventory
from tests.assets.aliyun_fake import AliyunFake

NOW = datetime(2026, 3, 1, tzinfo=UTC)
SECRET = "s3cr3t-value-never-shown"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[AliyunFake, str]]:
    cloud = AliyunFake(regions=["cn-hangzhou", "cn-shenzhen"])
    server = TestServer(cloud.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield cloud, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def provider(url: str, **options: Any) -> AliyunAssetProvider:
    return AliyunAssetProvider(
        "aliyun",
        endpoint=url,
        credentials=lambda: AliyunCredentials("test-key-id", SECRET),
        backoff_base_s=0.0,
        **options,
    )


async def listed(p: AliyunAssetProvider, region: str, asset_type: str) -> list[Any]:
    return [page async for page in p.list_assets("1688", region, asset_type)]


async def test_pages_follow_each_apis_paging_and_carry_the_total(
    fake: tuple[AliyunFake, str],
) -> None:
    cloud, url = fake
    for n in range(230):
        cloud.add("cn-hangzhou", "ecs", f"i-{n:03}", f"web-{n}")
    for n in range(120):
        cloud.add("cn-hangzhou", "disk", f"d-{n:03}", state="In_use", Size=40)

    ecs = await listed(provider(url), "cn-hangzhou", "ecs")
    disks = await listed(provider(url), "cn-hangzhou", "disk")

    assert [len(page) for page in ecs] == [100, 100, 30]
    assert {page.scope_total for page in ecs} == {230}
    assert [len(page) for page in disks] == [100, 20]
    sent = [r for r in cloud.requests if r["Action"] in ("DescribeInstances", "DescribeDisks")]
    assert sent == [
        {"Action": "DescribeInstances", "RegionId": "cn-hangzhou", "MaxResults": "100"},
        {
            "Action": "DescribeInstances",
            "RegionId": "cn-hangzhou",
            "NextToken": "100",
            "MaxResults": "100",
        },
        {
            "Action": "DescribeInstances",
            "RegionId": "cn-hangzhou",
            "NextToken": "200",
            "MaxResults": "100",
        },
        {
            "Action": "DescribeDisks",
            "RegionId": "cn-hangzhou",
            "PageNumber": "1",
            "PageSize": "100",
        },
        {
            "Action": "DescribeDisks",
            "RegionId": "cn-hangzhou",
            "PageNumber": "2",
            "PageSize": "100",
        },
    ]
    disk = disks[0][0]
    assert (disk.asset_id, disk.attributes["state"], disk.attributes["size_gib"]) == (
        "d-000",
        "In_use",
        40,
    )


async def test_every_asset_type_is_listed_in_its_documented_shape(
    fake: tuple[AliyunFake, str],
) -> None:
    cloud, url = fake
    for asset_type in sorted(ALIYUN_ASSET_TYPES):
        cloud.add(
            "cn-shenzhen", asset_type, f"{asset_type}-1", f"my-{asset_type}", tags={"team": "a"}
        )
    cloud.add("cn-hangzhou", "oss", "elsewhere")  # buckets are global; each keeps its region

    for asset_type in sorted(ALIYUN_ASSET_TYPES):
        assets = [
            a for page in await listed(provider(url), "cn-shenzhen", asset_type) for a in page
        ]
        assert len(assets) == 1, asset_type
        assert assets[0].name == (f"my-{asset_type}" if asset_type != "oss" else "oss-1")


async def test_throttling_is_retried_inside_the_page(fake: tuple[AliyunFake, str]) -> None:
    cloud, url = fake
    cloud.add("cn-hangzhou", "rds", "rm-1", "orders", Engine="MySQL")
    cloud.throttle["DescribeDBInstances"] = 2
    pages = await listed(provider(url, max_attempts=3), "cn-hangzhou", "rds")
    assert [a.attributes["engine"] for page in pages for a in page] == ["MySQL"]
    assert [r["Action"] for r in cloud.requests].count("DescribeDBInstances") == 3


async def test_throttling_past_the_attempts_is_a_retryable_error(
    fake: tuple[AliyunFake, str],
) -> None:
    cloud, url = fake
    cloud.throttle["DescribeLoadBalancers"] = 5
    with pytest.raises(RetryableError, match=r"Throttling.User .*after 2 attempts"):
        await listed(provider(url, max_attempts=2), "cn-hangzhou", "slb")


async def test_an_error_answer_is_permanent_and_never_shows_the_secret(
    fake: tuple[AliyunFake, str],
) -> None:
    cloud, url = fake
    cloud.fail["DescribeVpcs"] = "InvalidParameter"
    with pytest.raises(PermanentError, match="InvalidParameter") as failed:
        await listed(provider(url), "cn-hangzhou", "vpc")
    assert SECRET not in str(failed.value)
    assert SECRET not in repr(provider(url))


async def test_a_denied_service_is_skipped_and_discovery_goes_on(
    fake: tuple[AliyunFake, str],
) -> None:
    cloud, url = fake
    cloud.add("cn-hangzhou", "ecs", "i-1", "web")
    cloud.add("cn-shenzhen", "vpc", "vpc-1", "main")
    cloud.add("cn-shenzhen", "rds", "rm-1", "db")
    cloud.deny.add("DescribeDBInstances")
    p = provider(url)
    with pytest.raises(ScopeDeniedError):
        await listed(p, "cn-shenzhen", "rds")

    executor = DiscoverAssetsExecutor(
        ProviderRegistry([p]), MemoryAssetInventory(), ManualClock(NOW)
    )
    params = executor.params_model.model_validate({"provider": "aliyun", "account_id": "1688"})
    ctx = TaskContext(
        task_id="t", task_type="discover_assets", attempt=1, max_attempts=1, run_at=NOW
    )
    result = await executor.execute(params, ctx)

    assert result["by_region"] == {"cn-hangzhou": {"ecs": 1}, "cn-shenzhen": {"vpc": 1}}
    assert result["skipped"] == [
        {"region": r, "asset_type": "rds", "reason": f"rds in {r}: Forbidden.RAM"}
        for r in ("cn-hangzhou", "cn-shenzhen")
    ]
    assert {"Action": "DescribeRegions"} in cloud.requests


async def test_an_unreachable_endpoint_is_retried_then_retryable() -> None:
    from tests.support.network import free_port

    p = provider(f"http://127.0.0.1:{free_port()}", max_attempts=2)
    for asset_type in ("ecs", "oss"):
        with pytest.raises(RetryableError, match=r"connection failed .*after 2 attempts"):
            await listed(p, "cn-hangzhou", asset_type)


async def test_oss_buckets_page_by_marker_and_keep_their_region(
    fake: tuple[AliyunFake, str],
) -> None:
    cloud, url = fake
    for n in range(130):
        cloud.add("cn-hangzhou" if n % 2 else "cn-shenzhen", "oss", f"bucket-{n:03}")
    cloud.throttle["ListBuckets"] = 1
    pages = await listed(provider(url), "cn-hangzhou", "oss")
    assert sum(len(page) for page in pages) == 65
    assert {a.region for page in pages for a in page} == {"cn-hangzhou"}
    markers = [r["marker"] for r in cloud.requests if r["Action"] == "ListBuckets"]
    assert markers == ["", "", "bucket-099"]  # throttled once, retried, then the next page

    cloud.deny.add("ListBuckets")
    with pytest.raises(ScopeDeniedError, match="oss in cn-hangzhou: AccessDenied"):
        await listed(provider(url), "cn-hangzhou", "oss")
