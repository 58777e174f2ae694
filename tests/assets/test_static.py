"""The static provider serves an inventory file as a cloud API would, page by page."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest

from cam_tasks.assets import StaticAssetProvider
from cam_tasks.domain import Asset, ConfigurationError, PermanentError

SAMPLE = resources.files("cam_tasks") / "data" / "sample_inventory.toml"


async def collect(
    provider: StaticAssetProvider, account: str, region: str, kind: str
) -> list[list[Asset]]:
    return [page async for page in provider.list_assets(account, region, kind)]


@pytest.fixture
def sample() -> StaticAssetProvider:
    with resources.as_file(SAMPLE) as path:
        return StaticAssetProvider("aliyun", path)


async def test_the_sample_describes_two_accounts_of_aliyun(sample: StaticAssetProvider) -> None:
    assert sample.name == "aliyun"
    assert sample.asset_types == {"ecs", "rds", "slb", "oss"}
    assert await sample.regions("123") == [
        "cn-shenzhen",
        "cn-beijing",
        "cn-hangzhou",
        "cn-shanghai",
    ]
    assert await sample.regions("456") == ["cn-hangzhou", "cn-beijing"]
    ecs = [a for page in await collect(sample, "123", "cn-shenzhen", "ecs") for a in page]
    assert len(ecs) == 8
    assert {(a.region, a.asset_type) for a in ecs} == {("cn-shenzhen", "ecs")}
    assert ecs[0].name == "web-1"
    assert ecs[0].attributes["status"] == "Running"


async def test_the_sample_holds_about_sixty_assets_in_account_123(
    sample: StaticAssetProvider,
) -> None:
    total = 0
    for region in await sample.regions("123"):
        for kind in sample.asset_types:
            total += sum(len(page) for page in await collect(sample, "123", region, kind))
    assert total == 59


async def test_assets_come_in_pages_of_page_size(tmp_path: Path) -> None:
    with resources.as_file(SAMPLE) as path:
        provider = StaticAssetProvider("aliyun", path, page_size=3)
    pages = await collect(provider, "123", "cn-shenzhen", "ecs")
    assert [len(page) for page in pages] == [3, 3, 2]


async def test_a_type_absent_from_a_region_lists_nothing(sample: StaticAssetProvider) -> None:
    assert await collect(sample, "123", "cn-shanghai", "slb") == []
    assert await collect(sample, "456", "cn-beijing", "rds") == []


INVENTORY: dict[str, Any] = {
    "accounts": {
        "123": {
            "regions": {
                "cn-beijing": {
                    "ecs": [{"id": "i-1", "name": "web", "attributes": {"cpu": 2}}],
                    "oss": [{"id": "bucket"}],
                }
            }
        }
    }
}


async def test_json_toml_and_a_mapping_describe_the_same_inventory(tmp_path: Path) -> None:
    json_file = tmp_path / "inventory.json"
    json_file.write_bytes(orjson.dumps(INVENTORY))
    toml_file = tmp_path / "inventory.toml"
    toml_file.write_text(
        '[accounts."123".regions."cn-beijing"]\n'
        'ecs = [ { id = "i-1", name = "web", attributes = { cpu = 2 } } ]\n'
        'oss = [ { id = "bucket" } ]\n'
    )
    listings = []
    for source in (json_file, str(toml_file), INVENTORY):
        provider = StaticAssetProvider("p", source)
        listings.append(
            (
                provider.asset_types,
                await collect(provider, "123", "cn-beijing", "ecs"),
                await collect(provider, "123", "cn-beijing", "oss"),
            )
        )
    assert listings[0] == listings[1] == listings[2]
    assert listings[0][1] == [
        [
            Asset(
                asset_id="i-1",
                asset_type="ecs",
                region="cn-beijing",
                name="web",
                attributes={"cpu": 2},
            )
        ]
    ]


async def test_numeric_account_and_asset_ids_become_strings() -> None:
    provider = StaticAssetProvider(
        "p", {"accounts": {123: {"regions": {"r": {"ecs": [{"id": 42}]}}}}}
    )
    assert await provider.regions("123") == ["r"]
    pages = await collect(provider, "123", "r", "ecs")
    assert pages[0][0].asset_id == "42"


async def test_an_unknown_account_or_region_is_a_permanent_error(
    sample: StaticAssetProvider,
) -> None:
    with pytest.raises(PermanentError, match="no account '999'"):
        await sample.regions("999")
    with pytest.raises(PermanentError, match="no account '999'"):
        await collect(sample, "999", "cn-shenzhen", "ecs")
    with pytest.raises(PermanentError, match="no region 'us-east-1'"):
        await collect(sample, "123", "us-east-1", "ecs")


def test_a_file_that_does_not_parse_is_a_configuration_error_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[accounts\n")
    with pytest.raises(ConfigurationError, match=r"broken\.toml: cannot parse"):
        StaticAssetProvider("p", broken)
    bad_json = tmp_path / "broken.json"
    bad_json.write_text("{")
    with pytest.raises(ConfigurationError, match=r"broken\.json: cannot parse"):
        StaticAssetProvider("p", bad_json)


def test_a_file_of_the_wrong_shape_is_a_configuration_error_naming_the_problem(
    tmp_path: Path,
) -> None:
    wrong = tmp_path / "wrong.json"
    wrong.write_bytes(orjson.dumps({"accounts": {"1": {"regions": {"r": {"ecs": [{"nm": 1}]}}}}}))
    with pytest.raises(ConfigurationError, match=r"wrong\.json: .*accounts\.1\.regions\.r\.ecs\.0"):
        StaticAssetProvider("p", wrong)
    with pytest.raises(ConfigurationError, match=r"inventory mapping: .*accounts"):
        StaticAssetProvider("p", {"acounts": {}})


def test_a_missing_file_or_an_unknown_format_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"missing\.toml: cannot read"):
        StaticAssetProvider("p", tmp_path / "missing.toml")
    with pytest.raises(ConfigurationError, match=r"\.toml or \.json"):
        StaticAssetProvider("p", tmp_path / "inventory.yaml")


def test_paging_and_latency_must_make_sense() -> None:
    with pytest.raises(ValueError, match="page_size"):
        StaticAssetProvider("p", INVENTORY, page_size=0)
    with pytest.raises(ValueError, match="latency_s"):
        StaticAssetProvider("p", INVENTORY, latency_s=-1)
