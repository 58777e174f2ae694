"""The in-process asset inventory behind ``memory://`` (a dict; nothing survives the process).

Passes the same contract suite as :class:`~cam_tasks.repository.mongo.MongoAssetInventory`
(``tests/repository/test_inventory_contract.py``): an upsert whose region or type is not the
scope's is a ``ValueError``, since the scope is the key.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from cam_tasks.domain import (
    ASSET_KEY_ORDER,
    Asset,
    AssetFilter,
    AssetScope,
    AssetSort,
    AssetSummary,
    AssetSync,
    StoredAsset,
    summarize_assets,
)
from cam_tasks.repository.documents import asset_criteria, check_scope

__all__ = ["MemoryAssetInventory"]


class MemoryAssetInventory:
    """The inventory in a dict. Each method runs without awaiting, so calls from coroutines of
    one event loop never interleave; nothing survives the process."""

    def __init__(self) -> None:
        # scope -> asset_id -> (asset, fingerprint, synced_at)
        self._scopes: dict[AssetScope, dict[str, tuple[Asset, str, datetime]]] = {}
        # scope -> the sync that last listed it
        self._syncs: dict[AssetScope, AssetSync] = {}

    async def initialize(self) -> None:
        """Nothing to create; present for the protocol."""

    async def fingerprints(self, scope: AssetScope) -> dict[str, str]:
        stored = self._scopes.get(scope, {})
        return {asset_id: fingerprint for asset_id, (_, fingerprint, _) in stored.items()}

    async def write(
        self,
        scope: AssetScope,
        *,
        upserts: Sequence[Asset],
        removals: Collection[str],
        now: datetime,
        sync: AssetSync | None = None,
    ) -> None:
        """Upsert ``upserts`` and delete ``removals`` in ``scope`` at once, and record ``sync``
        for the scope. ValueError, before any change, for an upsert outside the scope."""
        check_scope(scope, upserts)
        stored = self._scopes.setdefault(scope, {})
        for asset in upserts:
            stored[asset.asset_id] = (asset, asset.fingerprint(), now)
        for asset_id in removals:
            stored.pop(asset_id, None)
        if sync is not None:
            self._syncs[scope] = sync
        if not stored:
            del self._scopes[scope]
            self._syncs.pop(scope, None)

    async def find(
        self,
        *,
        provider: str | None = None,
        account_id: str | None = None,
        region: str | None = None,
        asset_type: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[Asset], int]:
        """Matching assets ordered by (region, asset_type, asset_id) and their total.

        ``limit=0`` returns only the total. ValueError for a negative offset or limit.
        """
        query = asset_criteria(
            offset,
            limit,
            provider=provider,
            account_id=account_id,
            region=region,
            asset_type=asset_type,
        )
        matches = [
            stored[0]
            for scope, assets in self._scopes.items()
            if all(getattr(scope, name) == value for name, value in query.items())
            for stored in assets.values()
        ]
        matches.sort(key=lambda a: (a.region, a.asset_type, a.asset_id))
        return matches[offset : offset + limit], len(matches)

    async def search(
        self,
        query: AssetFilter,
        *,
        sort: AssetSort = "region",
        descending: bool = False,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[StoredAsset], int]:
        """A page of the selected assets in ``sort`` order (ties by the asset key, ascending)
        and their total. ValueError for a negative offset or limit."""
        if offset < 0 or limit < 0:
            raise ValueError("offset and limit must be >= 0")
        selected = self._selected(query)
        selected.sort(key=lambda a: tuple(getattr(a, name) for name in ASSET_KEY_ORDER))
        # Stable sorts: the key order above survives within equal values of ``sort``. Assets
        # without a value (synced_at None) come first ascending, as MongoDB orders nulls.
        selected.sort(key=lambda a: _sort_value(a, sort), reverse=descending)
        return selected[offset : offset + limit], len(selected)

    async def summary(self, query: AssetFilter) -> AssetSummary:
        return summarize_assets(self._selected(query))

    def _selected(self, query: AssetFilter) -> list[StoredAsset]:
        selected: list[StoredAsset] = []
        for scope, assets in self._scopes.items():
            sync = self._syncs.get(scope)
            for asset, _, synced_at in assets.values():
                stored = StoredAsset(
                    provider=scope.provider,
                    account_id=scope.account_id,
                    region=asset.region,
                    asset_type=asset.asset_type,
                    asset_id=asset.asset_id,
                    name=asset.name,
                    attributes=asset.attributes,
                    synced_at=synced_at,
                    last_sync=sync,
                )
                if query.matches(stored):
                    selected.append(stored)
        return selected


def _sort_value(asset: StoredAsset, sort: AssetSort) -> tuple[bool, object]:
    value = getattr(asset, sort)
    return (value is not None, value if value is not None else "")
