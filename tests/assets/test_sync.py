"""sync_scope: the one diff/write engine. Counts, round trips, duplicates, interruption."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from cam_tasks.assets import sync_scope
from cam_tasks.domain import Asset, AssetFilter, AssetScope, AssetSync, PermanentError, SyncCounts
from cam_tasks.repository import MemoryAssetInventory

NOW = datetime(2026, 3, 1, tzinfo=UTC)
SCOPE = AssetScope(provider="fake", account_id="1", region="r1", asset_type="vm")


def vm(asset_id: str, **attributes: Any) -> Asset:
    return Asset(asset_id=asset_id, asset_type="vm", region="r1", attributes=attributes)


class PagedProvider:
    """Reports ``assets`` for every scope, ``page_size`` at a time. After ``pause_after`` pages
    it sets ``paused`` and waits for ``resume``: a cloud API that is slow to answer."""

    name = "fake"
    asset_types = frozenset({"vm"})

    def __init__(
        self, assets: Sequence[Asset], *, page_size: int = 2, pause_after: int | None = None
    ) -> None:
        self.assets = list(assets)
        self.page_size = page_size
        self.pause_after = pause_after
        self.paused = asyncio.Event()
        self.resume = asyncio.Event()

    async def regions(self, account_id: str) -> list[str]:
        return ["r1"]

    async def list_assets(
        self, account_id: str, region: str, asset_type: str
    ) -> AsyncIterator[list[Asset]]:
        for number, start in enumerate(range(0, len(self.assets), self.page_size)):
            if number == self.pause_after:
                self.paused.set()
                await self.resume.wait()
            yield self.assets[start : start + self.page_size]


class CountingInventory(MemoryAssetInventory):
    """A real memory inventory that also records its round trips."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.writes: list[tuple[int, int]] = []  # (upserts, removals) per call

    async def fingerprints(self, scope: AssetScope) -> dict[str, str]:
        self.reads += 1
        return await super().fingerprints(scope)

    async def write(
        self,
        scope: AssetScope,
        *,
        upserts: Sequence[Asset],
        removals: Collection[str],
        now: datetime,
        sync: AssetSync | None = None,
    ) -> None:
        self.writes.append((len(upserts), len(removals)))
        await super().write(scope, upserts=upserts, removals=removals, now=now, sync=sync)


async def stored(inventory: MemoryAssetInventory) -> dict[str, Asset]:
    assets, _ = await inventory.find(limit=10_000)
    return {a.asset_id: a for a in assets}


async def test_a_first_sync_adds_everything_and_a_repeat_changes_nothing() -> None:
    inventory = MemoryAssetInventory()
    provider = PagedProvider([vm("a"), vm("b"), vm("c")])
    first = await sync_scope(inventory, provider, SCOPE, now=NOW)
    assert first == SyncCounts(total_count=3, added_count=3)
    second = await sync_scope(inventory, provider, SCOPE, now=NOW)
    assert second == SyncCounts(total_count=3, unchanged_count=3)


async def test_a_second_sync_counts_added_updated_unchanged_and_removed() -> None:
    inventory = MemoryAssetInventory()
    await sync_scope(inventory, PagedProvider([vm("a"), vm("b", cpu=2), vm("c")]), SCOPE, now=NOW)
    now_reported = [vm("a"), vm("b", cpu=4), vm("d")]
    counts = await sync_scope(inventory, PagedProvider(now_reported), SCOPE, now=NOW)
    assert counts == SyncCounts(
        total_count=3, added_count=1, updated_count=1, unchanged_count=1, removed_count=1
    )
    assert await stored(inventory) == {a.asset_id: a for a in now_reported}


async def test_an_empty_answer_removes_the_whole_scope() -> None:
    inventory = MemoryAssetInventory()
    await sync_scope(inventory, PagedProvider([vm("a"), vm("b")]), SCOPE, now=NOW)
    counts = await sync_scope(inventory, PagedProvider([]), SCOPE, now=NOW)
    assert counts == SyncCounts(removed_count=2)
    assert await stored(inventory) == {}


async def test_changes_are_written_in_batches_with_removals_in_the_last() -> None:
    inventory = CountingInventory()
    await sync_scope(inventory, PagedProvider([vm("gone-1"), vm("gone-2")]), SCOPE, now=NOW)
    inventory.reads, inventory.writes = 0, []
    provider = PagedProvider([vm(f"v{n:04}") for n in range(2500)], page_size=300)
    counts = await sync_scope(inventory, provider, SCOPE, now=NOW, batch_size=1000)
    assert (counts.added_count, counts.removed_count) == (2500, 2)
    assert inventory.reads == 1
    assert inventory.writes == [(1000, 0), (1000, 0), (500, 2)]


async def test_only_changed_assets_are_written() -> None:
    inventory = CountingInventory()
    assets = [vm(f"v{n}") for n in range(10)]
    await sync_scope(inventory, PagedProvider(assets), SCOPE, now=NOW)
    inventory.writes = []
    assert (
        await sync_scope(inventory, PagedProvider(assets), SCOPE, now=NOW)
    ).unchanged_count == 10
    assert inventory.writes == []
    assets[3] = vm("v3", changed=True)
    await sync_scope(inventory, PagedProvider(assets), SCOPE, now=NOW)
    assert inventory.writes == [(1, 0)]


async def test_removals_left_after_a_full_last_batch_take_one_more_write() -> None:
    inventory = CountingInventory()
    await sync_scope(inventory, PagedProvider([vm("old")]), SCOPE, now=NOW)
    inventory.writes = []
    await sync_scope(
        inventory, PagedProvider([vm(f"n{n}") for n in range(4)]), SCOPE, now=NOW, batch_size=2
    )
    assert inventory.writes == [(2, 0), (2, 0), (0, 1)]


async def test_an_asset_repeated_by_the_provider_counts_once_and_its_first_version_wins() -> None:
    inventory = MemoryAssetInventory()
    provider = PagedProvider([vm("a", v=1), vm("b"), vm("a", v=2), vm("b")], page_size=1)
    counts = await sync_scope(inventory, provider, SCOPE, now=NOW)
    assert counts == SyncCounts(total_count=2, added_count=2)
    assert (await stored(inventory))["a"].attributes == {"v": 1}


async def test_an_asset_of_another_scope_fails_the_sync_permanently() -> None:
    stray = Asset(asset_id="x", asset_type="vm", region="r2")
    with pytest.raises(PermanentError, match="while listing vm in r1"):
        await sync_scope(MemoryAssetInventory(), PagedProvider([vm("a"), stray]), SCOPE, now=NOW)


async def test_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        await sync_scope(MemoryAssetInventory(), PagedProvider([]), SCOPE, now=NOW, batch_size=0)


async def test_progress_is_reported_per_page_counting_only_finished_work() -> None:
    inventory = MemoryAssetInventory()
    await sync_scope(inventory, PagedProvider([vm("a"), vm("b")]), SCOPE, now=NOW)
    seen: list[SyncCounts] = []
    provider = PagedProvider([vm("a"), vm("b"), vm("c"), vm("d"), vm("e")], page_size=2)
    await sync_scope(inventory, provider, SCOPE, now=NOW, batch_size=2, on_page=seen.append)
    assert [(c.total_count, c.unchanged_count, c.added_count) for c in seen] == [
        (2, 2, 0),  # first page: both unchanged
        (4, 2, 2),  # second page: c and d filled a batch, which was written
        (5, 2, 2),  # e received, its batch not written yet
        (5, 2, 3),  # the final write
    ]


async def test_an_interrupted_sync_keeps_written_batches_and_removes_nothing() -> None:
    inventory = MemoryAssetInventory()
    await sync_scope(inventory, PagedProvider([vm("old")]), SCOPE, now=NOW)
    provider = PagedProvider([vm(f"v{n}") for n in range(6)], page_size=2, pause_after=2)
    partial: list[SyncCounts] = []
    running = asyncio.create_task(
        sync_scope(inventory, provider, SCOPE, now=NOW, batch_size=2, on_page=partial.append)
    )
    await provider.paused.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert partial[-1] == SyncCounts(total_count=4, added_count=4)
    assert set(await stored(inventory)) == {"old", "v0", "v1", "v2", "v3"}

    provider.pause_after = None
    resumed = await sync_scope(inventory, provider, SCOPE, now=NOW)
    assert resumed == SyncCounts(total_count=6, added_count=2, unchanged_count=4, removed_count=1)


async def test_a_sync_that_changes_nothing_still_records_itself_in_one_write() -> None:
    inventory = CountingInventory()
    assets = [vm("a"), vm("b")]
    await sync_scope(inventory, PagedProvider(assets), SCOPE, now=NOW)
    inventory.writes = []
    mark = AssetSync(task_id="t-2", project_id="project-a", at=NOW)
    counts = await sync_scope(inventory, PagedProvider(assets), SCOPE, now=NOW, sync=mark)
    assert counts.unchanged_count == 2
    assert inventory.writes == [(0, 0)]
    found, _ = await inventory.search(AssetFilter(project_ids=frozenset({"project-a"})))
    assert sorted(a.asset_id for a in found) == ["a", "b"]
