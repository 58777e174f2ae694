"""One contract for every asset inventory: memory, Mongo on mongomock-motor, Mongo over the wire."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.errors import DuplicateKeyError, ServerSelectionTimeoutError

from cam_tasks.domain import (
    Asset,
    AssetFilter,
    AssetScope,
    AssetSummary,
    AssetSync,
    ConfigurationError,
    DatabaseUnavailableError,
)
from cam_tasks.repository import MongoAssetInventory
from cam_tasks.repository.protocol import AssetInventory
from tests.conftest import Backend

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SHENZHEN_ECS = AssetScope(
    provider="aliyun", account_id="123", region="cn-shenzhen", asset_type="ecs"
)


def scope(**changes: str) -> AssetScope:
    return SHENZHEN_ECS.model_copy(update=changes)


def asset(asset_id: str, in_scope: AssetScope = SHENZHEN_ECS, **attributes: Any) -> Asset:
    return Asset(
        asset_id=asset_id,
        asset_type=in_scope.asset_type,
        region=in_scope.region,
        name=f"name-{asset_id}",
        attributes=attributes,
    )


@pytest.fixture
def database(mongo_backend: Backend) -> Any:
    """A fresh, empty database on each Mongo-API backend in turn."""
    return mongo_backend.database


@pytest.fixture
async def inventory(backend: Backend) -> AssetInventory:
    store = backend.inventory()
    await store.initialize()
    return store


async def test_an_empty_scope_has_no_fingerprints(inventory: AssetInventory) -> None:
    assert await inventory.fingerprints(SHENZHEN_ECS) == {}


async def test_written_assets_are_fingerprinted_as_the_domain_computes(
    inventory: AssetInventory,
) -> None:
    assets = [asset("i-1", cpu=2), asset("i-2", cpu=4)]
    await inventory.write(SHENZHEN_ECS, upserts=assets, removals=(), now=NOW)
    assert await inventory.fingerprints(SHENZHEN_ECS) == {
        a.asset_id: a.fingerprint() for a in assets
    }


async def test_an_upsert_replaces_the_stored_version(inventory: AssetInventory) -> None:
    await inventory.write(SHENZHEN_ECS, upserts=[asset("i-1", cpu=2)], removals=(), now=NOW)
    newer = asset("i-1", cpu=8)
    await inventory.write(SHENZHEN_ECS, upserts=[newer], removals=(), now=NOW)
    assert await inventory.fingerprints(SHENZHEN_ECS) == {"i-1": newer.fingerprint()}
    found, total = await inventory.find()
    assert (found, total) == ([newer], 1)


async def test_upserts_and_removals_apply_together(inventory: AssetInventory) -> None:
    await inventory.write(
        SHENZHEN_ECS, upserts=[asset("i-1"), asset("i-2"), asset("i-3")], removals=(), now=NOW
    )
    await inventory.write(
        SHENZHEN_ECS, upserts=[asset("i-4")], removals={"i-1", "i-3", "i-unknown"}, now=NOW
    )
    assert set(await inventory.fingerprints(SHENZHEN_ECS)) == {"i-2", "i-4"}


async def test_scopes_are_isolated_even_for_equal_asset_ids(inventory: AssetInventory) -> None:
    others = [
        scope(provider="aws"),
        scope(account_id="456"),
        scope(region="cn-beijing"),
        scope(asset_type="rds"),
    ]
    for each in [SHENZHEN_ECS, *others]:
        await inventory.write(each, upserts=[asset("same-id", each)], removals=(), now=NOW)
    await inventory.write(SHENZHEN_ECS, upserts=[], removals=["same-id"], now=NOW)
    assert await inventory.fingerprints(SHENZHEN_ECS) == {}
    for each in others:
        assert list(await inventory.fingerprints(each)) == ["same-id"]


async def test_writing_nothing_changes_nothing(inventory: AssetInventory) -> None:
    await inventory.write(SHENZHEN_ECS, upserts=[asset("i-1")], removals=(), now=NOW)
    await inventory.write(SHENZHEN_ECS, upserts=[], removals=(), now=NOW)
    assert list(await inventory.fingerprints(SHENZHEN_ECS)) == ["i-1"]


async def test_an_upsert_outside_its_scope_is_refused_before_any_write(
    inventory: AssetInventory,
) -> None:
    stray = asset("i-9", scope(region="cn-beijing"))
    with pytest.raises(ValueError, match="does not belong"):
        await inventory.write(SHENZHEN_ECS, upserts=[asset("i-1"), stray], removals=(), now=NOW)
    assert await inventory.fingerprints(SHENZHEN_ECS) == {}


async def test_find_orders_by_region_type_and_id_and_counts_all_matches(
    inventory: AssetInventory,
) -> None:
    layout = {
        scope(region="cn-shenzhen", asset_type="rds"): ["rm-2", "rm-1"],
        scope(region="cn-beijing", asset_type="ecs"): ["i-b"],
        scope(region="cn-shenzhen", asset_type="ecs"): ["i-c", "i-a"],
        scope(region="cn-beijing", asset_type="ecs", account_id="456"): ["i-z"],
    }
    for each, ids in layout.items():
        await inventory.write(each, upserts=[asset(i, each) for i in ids], removals=(), now=NOW)

    found, total = await inventory.find(account_id="123")
    assert total == 5
    assert [(a.region, a.asset_type, a.asset_id) for a in found] == [
        ("cn-beijing", "ecs", "i-b"),
        ("cn-shenzhen", "ecs", "i-a"),
        ("cn-shenzhen", "ecs", "i-c"),
        ("cn-shenzhen", "rds", "rm-1"),
        ("cn-shenzhen", "rds", "rm-2"),
    ]
    page, total = await inventory.find(account_id="123", offset=1, limit=2)
    assert ([a.asset_id for a in page], total) == (["i-a", "i-c"], 5)


async def test_find_filters_by_each_criterion(inventory: AssetInventory) -> None:
    for each in [SHENZHEN_ECS, scope(provider="aws", region="us-east-1"), scope(asset_type="rds")]:
        await inventory.write(
            each, upserts=[asset(f"{each.provider}-{each.asset_type}", each)], removals=(), now=NOW
        )
    assert (await inventory.find(provider="aws"))[1] == 1
    assert (await inventory.find(region="cn-shenzhen"))[1] == 2
    assert [a.asset_id for a in (await inventory.find(asset_type="rds"))[0]] == ["aliyun-rds"]
    assert (await inventory.find(account_id="999")) == ([], 0)


async def test_find_returns_names_and_nested_attributes_as_written(
    inventory: AssetInventory,
) -> None:
    stored = asset("i-1", cpu=2, ratio=0.5, tags={"env": "prod", "team": ["a", "b"]}, up=True)
    await inventory.write(SHENZHEN_ECS, upserts=[stored], removals=(), now=NOW)
    assert (await inventory.find(asset_type="ecs")) == ([stored], 1)


async def test_find_past_the_end_or_with_limit_zero_returns_only_the_total(
    inventory: AssetInventory,
) -> None:
    await inventory.write(SHENZHEN_ECS, upserts=[asset("i-1"), asset("i-2")], removals=(), now=NOW)
    assert await inventory.find(offset=5) == ([], 2)
    assert await inventory.find(limit=0) == ([], 2)
    with pytest.raises(ValueError, match="offset"):
        await inventory.find(offset=-1)


async def test_a_large_write_is_one_call_and_removes_in_bulk(inventory: AssetInventory) -> None:
    many = [asset(f"i-{n:03}", n=n) for n in range(300)]
    await inventory.write(SHENZHEN_ECS, upserts=many, removals=(), now=NOW)
    await inventory.write(
        SHENZHEN_ECS, upserts=[], removals=[a.asset_id for a in many[:250]], now=NOW
    )
    fingerprints = await inventory.fingerprints(SHENZHEN_ECS)
    assert len(fingerprints) == 50
    assert min(fingerprints) == "i-250"


async def test_initialize_is_idempotent(inventory: AssetInventory) -> None:
    await inventory.write(SHENZHEN_ECS, upserts=[asset("i-1")], removals=(), now=NOW)
    await inventory.initialize()
    assert list(await inventory.fingerprints(SHENZHEN_ECS)) == ["i-1"]


# -- Mongo only -------------------------------------------------------------------------------


async def test_mongo_documents_hold_key_fingerprint_and_synced_at(database: Any) -> None:
    store = MongoAssetInventory(database, collection_name="inventory")
    await store.initialize()
    stored = asset("i-1", cpu=2)
    await store.write(SHENZHEN_ECS, upserts=[stored], removals=(), now=NOW)
    document = await database.get_collection("inventory").find_one({}, {"_id": 0})
    assert document["synced_at"].replace(tzinfo=UTC) == NOW
    assert {k: v for k, v in document.items() if k != "synced_at"} == {
        "provider": "aliyun",
        "account_id": "123",
        "region": "cn-shenzhen",
        "asset_type": "ecs",
        "asset_id": "i-1",
        "name": "name-i-1",
        "attributes": {"cpu": 2},
        "fingerprint": stored.fingerprint(),
    }


async def test_mongo_enforces_one_document_per_asset_key(database: Any) -> None:
    store = MongoAssetInventory(database)
    await store.initialize()
    await store.write(SHENZHEN_ECS, upserts=[asset("i-1")], removals=(), now=NOW)
    duplicate = {**SHENZHEN_ECS.model_dump(), "asset_id": "i-1", "fingerprint": "x"}
    with pytest.raises(DuplicateKeyError):
        await database.get_collection("assets").insert_one(duplicate)


class _DownDatabase:
    """A database whose server never answers: every call fails as the driver fails then.

    (A client pointed at a closed port would do too, but PyMongo's async pool then leaks a
    socket on close, which filterwarnings=error turns into a failure of an unrelated test.)
    """

    name = "down"

    def get_collection(self, name: str) -> _DownDatabase:
        return self

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise ServerSelectionTimeoutError("No servers found yet")

    find = bulk_write = count_documents = create_index = create_indexes = _fail


async def test_mongo_unreachable_is_a_domain_error() -> None:
    store = MongoAssetInventory(_DownDatabase())
    with pytest.raises(DatabaseUnavailableError):
        await store.initialize()
    with pytest.raises(DatabaseUnavailableError):
        await store.fingerprints(SHENZHEN_ECS)
    with pytest.raises(DatabaseUnavailableError):
        await store.write(SHENZHEN_ECS, upserts=[asset("i-1")], removals=(), now=NOW)
    with pytest.raises(DatabaseUnavailableError):
        await store.find()


async def test_an_index_named_like_ours_but_defined_otherwise_needs_a_migration(
    database: Any,
) -> None:
    await database.get_collection("assets").create_index([("asset_id", 1)], name="asset_key")
    with pytest.raises(ConfigurationError, match="exists with another definition"):
        await MongoAssetInventory(database).initialize()


# -- reads for the API: search and summary --------------------------------------------------------

HANGZHOU_RDS = scope(region="cn-hangzhou", asset_type="rds")
AWS_EC2 = AssetScope(provider="aws", account_id="999", region="us-east-1", asset_type="ec2")


def sync(task_id: str, project_id: str | None, minute: int = 0) -> AssetSync:
    return AssetSync(task_id=task_id, project_id=project_id, at=NOW.replace(minute=minute))


async def filled(inventory: AssetInventory) -> AssetInventory:
    """Three scopes synced by three tasks of two projects (and one that predates sync marks)."""
    web = Asset(asset_id="i-web", asset_type="ecs", region="cn-shenzhen", name="Web-Server")
    db = Asset(asset_id="i-db", asset_type="ecs", region="cn-shenzhen", name="db (primary)")
    await inventory.write(
        SHENZHEN_ECS, upserts=[web, db], removals=(), now=NOW, sync=sync("t1", "a")
    )
    await inventory.write(
        HANGZHOU_RDS,
        upserts=[asset("rm-1", HANGZHOU_RDS)],
        removals=(),
        now=NOW,
        sync=sync("t2", "b", minute=5),
    )
    await inventory.write(AWS_EC2, upserts=[asset("i-0abc", AWS_EC2)], removals=(), now=NOW)
    return inventory


async def test_search_records_the_sync_on_every_asset_of_its_scope(
    inventory: AssetInventory,
) -> None:
    await inventory.write(SHENZHEN_ECS, upserts=[asset("i-1"), asset("i-2")], removals=(), now=NOW)
    # A later sync that changes nothing still marks the unchanged assets as its own.
    later = sync("t9", "p9", minute=30)
    await inventory.write(SHENZHEN_ECS, upserts=[], removals=(), now=NOW, sync=later)
    found, total = await inventory.search(AssetFilter())
    assert total == 2
    assert [a.last_sync for a in found] == [later, later]
    assert [(a.provider, a.account_id, a.synced_at) for a in found] == [("aliyun", "123", NOW)] * 2


async def test_search_filters_by_each_criterion_and_by_project(inventory: AssetInventory) -> None:
    await filled(inventory)

    async def ids(**criteria: Any) -> list[str]:
        found, total = await inventory.search(AssetFilter(**criteria), sort="asset_id")
        assert total == len(found)
        return [a.asset_id for a in found]

    assert await ids() == ["i-0abc", "i-db", "i-web", "rm-1"]
    assert await ids(provider="aliyun") == ["i-db", "i-web", "rm-1"]
    assert await ids(account_id="999") == ["i-0abc"]
    assert await ids(region="cn-hangzhou") == ["rm-1"]
    assert await ids(asset_type="ecs") == ["i-db", "i-web"]
    assert await ids(project_ids=frozenset({"a"})) == ["i-db", "i-web"]
    assert await ids(project_ids=frozenset({"a", "b"})) == ["i-db", "i-web", "rm-1"]
    assert await ids(project_ids=frozenset()) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("web", ["i-web"]),  # name, any case
        ("I-0A", ["i-0abc"]),  # id, any case
        ("(primary)", ["i-db"]),  # pattern characters are matched literally
        (".*", []),
        ('{"$ne": 1}', []),
    ],
)
async def test_search_text_is_a_literal_case_insensitive_substring_of_name_or_id(
    inventory: AssetInventory, text: str, expected: list[str]
) -> None:
    await filled(inventory)
    found, total = await inventory.search(AssetFilter(text=text), sort="asset_id")
    assert [a.asset_id for a in found] == expected
    assert total == len(expected)


async def test_search_sorts_either_way_with_the_asset_key_breaking_ties(
    inventory: AssetInventory,
) -> None:
    await filled(inventory)
    found, _ = await inventory.search(AssetFilter(), sort="provider", descending=True)
    # aws first; among aliyun's, the key order: cn-hangzhou before cn-shenzhen, then ids.
    assert [a.asset_id for a in found] == ["i-0abc", "rm-1", "i-db", "i-web"]
    page, total = await inventory.search(AssetFilter(), sort="name", offset=1, limit=2)
    assert total == 4
    assert [a.name for a in page] == ["db (primary)", "name-i-0abc"]  # after "Web-Server"
    assert (await inventory.search(AssetFilter(), limit=0)) == ([], 4)


async def test_summary_counts_by_field_and_names_the_latest_sync(
    inventory: AssetInventory,
) -> None:
    await filled(inventory)
    summary = await inventory.summary(AssetFilter())
    assert summary.total == 4
    assert [(c.value, c.count) for c in summary.by_provider] == [("aliyun", 3), ("aws", 1)]
    assert [(c.value, c.count) for c in summary.by_account] == [("123", 3), ("999", 1)]
    assert [(c.value, c.count) for c in summary.by_region] == [
        ("cn-hangzhou", 1),
        ("cn-shenzhen", 2),
        ("us-east-1", 1),
    ]
    assert [(c.value, c.count) for c in summary.by_type] == [("ec2", 1), ("ecs", 2), ("rds", 1)]
    assert summary.last_sync == sync("t2", "b", minute=5)

    mine = await inventory.summary(AssetFilter(project_ids=frozenset({"a"})))
    assert (mine.total, mine.last_sync) == (2, sync("t1", "a"))
    assert await inventory.summary(AssetFilter(project_ids=frozenset())) == AssetSummary()
