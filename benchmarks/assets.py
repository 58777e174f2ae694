"""B7: ``sync_assets`` over the static provider with 100k assets (one account, 4 regions x 2
asset types, 12.5k assets per scope, pages of 500), run by the real executor with a
``TaskContext``.

Two syncs each: the first adds every asset, the second finds them all unchanged. Inventory round
trips are counted at the inventory (``fingerprints`` reads and bulk ``write`` calls) on the
memory inventory, and as commands with a PyMongo ``CommandListener`` over the wire (10k assets
there: the wire server is slow). Target: >= 500 assets per write round trip.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections import Counter
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from benchmarks.common import Row, run, settle
from cam_tasks.assets import ProviderRegistry, StaticAssetProvider
from cam_tasks.domain import Asset, AssetScope, AssetSync, SystemClock
from cam_tasks.executor import TaskContext
from cam_tasks.executor.sync_assets import SyncAssetsExecutor
from cam_tasks.repository import MemoryAssetInventory
from cam_tasks.repository.protocol import AssetInventory

REGIONS = ("cn-hangzhou", "cn-shanghai", "cn-beijing", "cn-shenzhen")
TYPES = ("ecs", "rds")


class CountingInventory:
    """Counts the round trips an inventory is asked for."""

    def __init__(self, inner: AssetInventory) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    async def initialize(self) -> None:
        await self.inner.initialize()

    async def fingerprints(self, scope: AssetScope) -> dict[str, str]:
        self.calls["fingerprints"] += 1
        return await self.inner.fingerprints(scope)

    async def write(
        self,
        scope: AssetScope,
        *,
        upserts: Sequence[Asset],
        removals: Collection[str],
        now: datetime,
        sync: AssetSync | None = None,
    ) -> None:
        self.calls["write"] += 1
        await self.inner.write(scope, upserts=upserts, removals=removals, now=now, sync=sync)

    async def find(self, **criteria: Any) -> tuple[list[Asset], int]:
        return await self.inner.find(**criteria)


def _inventory_file(total: int) -> dict[str, Any]:
    per_scope = total // (len(REGIONS) * len(TYPES))
    regions = {
        region: {
            asset_type: [
                {
                    "id": f"{asset_type}-{region}-{index:06d}",
                    "name": f"{asset_type}-{index}",
                    "attributes": {"cpu": 2 + index % 8, "status": "Running", "zone": "a"},
                }
                for index in range(per_scope)
            ]
            for asset_type in TYPES
        }
        for region in REGIONS
    }
    return {"accounts": {"123": {"regions": regions}}}


async def _sync(
    executor: SyncAssetsExecutor, attempt: int
) -> tuple[float, dict[str, Any], TaskContext]:
    params = executor.params_model.model_validate(
        {"provider": "bench", "account_id": "123", "asset_types": list(TYPES)}
    )
    ctx = TaskContext(
        task_id=f"bench-{attempt}",
        task_type="sync_assets",
        attempt=1,
        max_attempts=1,
        run_at=SystemClock().now(),
    )
    settle()
    start = time.perf_counter()
    result = await executor.execute(params, ctx)
    return time.perf_counter() - start, result, ctx


async def _memory_rows(total: int) -> list[Row]:
    start = time.perf_counter()
    provider = StaticAssetProvider("bench", _inventory_file(total), page_size=500)
    built_s = time.perf_counter() - start
    inventory = CountingInventory(MemoryAssetInventory())
    executor = SyncAssetsExecutor(ProviderRegistry([provider]), inventory, SystemClock())
    first_s, first, _ = await _sync(executor, 1)
    first_calls = Counter(inventory.calls)
    inventory.calls.clear()
    second_s, second, _ = await _sync(executor, 2)
    assert first["added_count"] == total
    assert second["unchanged_count"] == total
    writes = first_calls["write"]
    label = f"{total // 1000}k"
    return [
        Row(
            "B7",
            f"sync_assets {label} assets, memory inventory, first sync (all added)",
            total / first_s,
            "assets/s",
            target="report",
            note=f"{first_s:.2f} s; provider built in {built_s:.1f} s (not timed)",
        ),
        Row(
            "B7",
            f"sync_assets {label} assets, memory inventory, re-sync (all unchanged)",
            total / second_s,
            "assets/s",
            target="report",
            note=f"{second_s:.2f} s; round trips {dict(inventory.calls)}",
        ),
        Row(
            "B7",
            f"assets per inventory write round trip, {label} added",
            total / writes if writes else None,
            "assets/trip",
            target=">= 500",
            check="value>=500",
            note=f"round trips {dict(first_calls)}",
        ),
    ]


async def _wire_rows(uri: str, total: int) -> list[Row]:
    from pymongo import AsyncMongoClient

    from benchmarks.wire import CommandCounter
    from cam_tasks.repository import MongoAssetInventory

    provider = StaticAssetProvider("bench", _inventory_file(total), page_size=500)
    counter = CommandCounter()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        uri, event_listeners=[counter], tz_aware=True
    )
    database = client[f"bench_{uuid.uuid4().hex[:10]}"]
    try:
        inventory = MongoAssetInventory(database)
        await inventory.initialize()
        executor = SyncAssetsExecutor(ProviderRegistry([provider]), inventory, SystemClock())
        counter.counting = True
        first_s, first, _ = await _sync(executor, 1)
        counter.counting = False
        assert first["added_count"] == total
    finally:
        await client.drop_database(database.name)
        await client.close()
    writes = counter.kinds.get("bulkWrite", 0) + counter.kinds.get("update", 0)
    writes += counter.kinds.get("insert", 0) + counter.kinds.get("delete", 0)
    label = f"{total // 1000}k"
    return [
        Row(
            "B7",
            f"sync_assets {label} assets over the wire, first sync",
            total / first_s,
            "assets/s",
            target="report",
            note=f"{first_s:.2f} s",
        ),
        Row(
            "B7",
            f"assets per write command over the wire, {label} added",
            total / writes if writes else None,
            "assets/cmd",
            target=">= 500",
            check="value>=500",
            note=f"commands {dict(counter.kinds)}",
        ),
    ]


async def main(args: argparse.Namespace) -> list[Row]:
    rows = await _memory_rows(8_000 if args.smoke else 100_000)
    if args.wire_uri:
        rows += await _wire_rows(args.wire_uri, 800 if args.smoke else 10_000)
    return rows


if __name__ == "__main__":
    run(main, __doc__ or "")
