"""Asset inventory reads: the use cases behind ``GET /assets`` and ``GET /assets/summary``.

Scoping follows the task lists: an asset belongs to the project of the last task that synced
its scope (recorded by the sync executors); a non-admin principal sees only its projects'
assets, an admin (or a caller without a principal: host code) sees all. The narrowing is a
condition of the store's query, so a page and its total never count assets of other projects.
"""

from __future__ import annotations

from dataclasses import dataclass

from cam_tasks.domain import (
    MAX_PAGE_SIZE,
    AssetFilter,
    AssetSort,
    AssetSummary,
    Permission,
    Principal,
    StoredAsset,
)
from cam_tasks.repository.protocol import AssetInventory

__all__ = ["AssetPage", "AssetService"]


@dataclass(frozen=True, slots=True)
class AssetPage:
    """One page of assets and how many the query selects in all."""

    assets: list[StoredAsset]
    total: int


def _scoped(query: AssetFilter, principal: Principal | None) -> AssetFilter:
    """``query`` narrowed to what ``principal`` sees (:meth:`Principal.visible_projects`)."""
    if principal is None:
        return query
    return query.model_copy(update={"project_ids": principal.visible_projects(query.project_ids)})


class AssetService:
    """Read-only use cases over the asset inventory. Raises AccessDeniedError when the
    principal may not read, DatabaseUnavailableError when the store cannot be reached."""

    def __init__(self, inventory: AssetInventory) -> None:
        self._inventory = inventory

    async def list(
        self,
        query: AssetFilter,
        *,
        sort: AssetSort = "region",
        descending: bool = False,
        offset: int = 0,
        limit: int = 20,
        principal: Principal | None = None,
    ) -> AssetPage:
        """A page of the assets ``query`` selects that ``principal`` sees, in ``sort`` order
        (ties by provider, account, region, type, id). ValueError for a negative offset or a
        limit outside 1..MAX_PAGE_SIZE."""
        if principal is not None:
            principal.require(Permission.READ)
        if offset < 0 or not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"offset must be >= 0 and limit within 1..{MAX_PAGE_SIZE}")
        assets, total = await self._inventory.search(
            _scoped(query, principal),
            sort=sort,
            descending=descending,
            offset=offset,
            limit=limit,
        )
        return AssetPage(assets, total)

    async def summary(
        self, query: AssetFilter | None = None, *, principal: Principal | None = None
    ) -> AssetSummary:
        """Counts of the assets ``principal`` sees (of those ``query`` selects) by provider,
        account, region and type, with the most recent sync among them."""
        if principal is not None:
            principal.require(Permission.READ)
        return await self._inventory.summary(_scoped(query or AssetFilter(), principal))
