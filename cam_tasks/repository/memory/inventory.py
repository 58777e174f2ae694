"""The in-process asset inventory behind ``memory://`` (a dict; nothing survives the process).

Passes the same contract suite as :class:`~cam_tasks.repository.mongo.MongoAssetInventory`
(``tests/repository/test_inventory_contract.py``): an upsert whose region or type is not the
scope's is a ``ValueError``, since the scope is the key.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from cam_tasks.domain import Asset, AssetScope
from cam_tasks.repository.documents import asset_criteria, check_scope

__all__ = ["MemoryAssetInventory"]


class MemoryAssetInventory:
    """The inventory in a dict. Each method runs without awaiting, so calls from coroutines of
    one event loop never interleave; nothing survives the process."""

    def __init__(self) -> None:
        # scope -> asset_id -> (asset, fingerprint)
        self._scopes: dict[AssetScope, dict[str, tuple[Asset, str]]] = {}

    async def initialize(self) -> None:
        """Nothing to create; present for the protocol."""

    async def fingerprints(self, scope: AssetScope) -> dict[str, str]:
        stored = self._scopes.get(scope, {})
        return {asset_id: fingerprint for asset_id, (_, fingerprint) in stored.items()}

    async def write(
        self,
        scope: AssetScope,
        *,
        upserts: Sequence[Asset],
        removals: Collection[str],
        now: datetime,
    ) -> None:
        """Upsert ``upserts`` and delete ``removals`` in ``scope`` at once. ``now`` is not kept
        (nothing reads it back from memory). ValueError, before any change, for an upsert
        outside the scope."""
        check_scope(scope, upserts)
        stored = self._scopes.setdefault(scope, {})
        for asset in upserts:
            stored[asset.asset_id] = (asset, asset.fingerprint())
        for asset_id in removals:
            stored.pop(asset_id, None)
        if not stored:
            del self._scopes[scope]

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
