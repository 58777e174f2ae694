"""The sync engine: bring one inventory scope in line with what a provider reports now.

Both asset executors (``sync_assets``, ``discover_assets``) run every scope through
:func:`sync_scope`, so they count and write the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cam_tasks.assets.protocol import AssetPage, AssetProvider
from cam_tasks.domain import Asset, AssetScope, AssetSync, PermanentError, SyncCounts
from cam_tasks.repository.protocol import AssetInventory

__all__ = ["DEFAULT_BATCH_SIZE", "PageProgress", "sync_scope"]

DEFAULT_BATCH_SIZE = 1000


@dataclass(frozen=True, slots=True)
class PageProgress:
    """Where the listing of one scope stands after a page: ``pages`` received, ``received``
    assets (distinct ids), and ``scope_total``, the provider's own count of the scope's assets
    when its last page told one (:class:`AssetPage`), else None."""

    pages: int
    received: int
    scope_total: int | None


async def sync_scope(
    inventory: AssetInventory,
    provider: AssetProvider,
    scope: AssetScope,
    *,
    now: datetime,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_page: Callable[[SyncCounts], object] | None = None,
    on_progress: Callable[[PageProgress], object] | None = None,
    sync: AssetSync | None = None,
) -> SyncCounts:
    """Sync ``scope`` from ``provider`` into ``inventory`` and return what changed.

    Reads the stored fingerprints once, streams the provider's pages and compares each asset:
    unknown id → added, other fingerprint → updated, same → unchanged (not rewritten). Added and
    updated assets are written in batches of up to ``batch_size`` as they accumulate; stored
    assets the provider no longer reports are removed in the last write. Round trips: one read
    plus ``ceil(changed / batch_size)`` writes (one more only when removals are left over after
    a full last batch). An id the provider repeats counts once; its first version wins.

    ``on_page`` is called after every page (and after the final write) with the counts so
    far, which only count work that is done: ``total_count`` is the distinct assets received,
    ``unchanged_count`` those found equal, ``added_count``/``updated_count`` those whose write
    was acknowledged, ``removed_count`` 0 until the end. When cancelled, batches already
    written stay written and nothing is removed, so the next sync resumes from there (writes are
    idempotent upserts). The counts are exact when one sync of a scope runs at a time.
    ``on_progress`` is called after every page with a :class:`PageProgress`. ``sync`` (the
    task doing this, its project and ``now``) is recorded on every asset of the scope by each
    write, and by one last write even when nothing changed, so the scope's assets always name
    the last sync that listed them.

    Raises PermanentError when the provider returns an asset of another region or type, and
    whatever the provider or the inventory raise (DatabaseUnavailableError…).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    stored = await inventory.fingerprints(scope)
    seen: set[str] = set()
    pending: list[Asset] = []
    added = updated = unchanged = added_pending = updated_pending = pages = 0

    def counts(removed: int = 0) -> SyncCounts:
        return SyncCounts(
            total_count=len(seen),
            added_count=added,
            updated_count=updated,
            unchanged_count=unchanged,
            removed_count=removed,
        )

    async for page in provider.list_assets(scope.account_id, scope.region, scope.asset_type):
        for asset in page:
            if asset.region != scope.region or asset.asset_type != scope.asset_type:
                raise PermanentError(
                    f"provider {provider.name!r} returned {asset.asset_type} {asset.asset_id!r}"
                    f" in {asset.region} while listing {scope.asset_type} in {scope.region}"
                )
            if asset.asset_id in seen:
                continue
            seen.add(asset.asset_id)
            previous = stored.get(asset.asset_id)
            if previous == asset.fingerprint():
                unchanged += 1
                continue
            pending.append(asset)
            if previous is None:
                added_pending += 1
            else:
                updated_pending += 1
            if len(pending) == batch_size:
                await inventory.write(scope, upserts=pending, removals=(), now=now, sync=sync)
                added, updated = added + added_pending, updated + updated_pending
                pending, added_pending, updated_pending = [], 0, 0
        pages += 1
        if on_page is not None:
            on_page(counts())
        if on_progress is not None:
            total = page.scope_total if isinstance(page, AssetPage) else None
            on_progress(PageProgress(pages=pages, received=len(seen), scope_total=total))

    removals = stored.keys() - seen
    if pending or removals or sync is not None:
        await inventory.write(scope, upserts=pending, removals=removals, now=now, sync=sync)
        added, updated = added + added_pending, updated + updated_pending
    result = counts(removed=len(removals))
    if on_page is not None:
        on_page(result)
    return result
