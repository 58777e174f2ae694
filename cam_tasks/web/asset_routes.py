"""The asset inventory, read-only: what the syncs found.

- ``GET /assets``: stored assets, filtered by ``provider``, ``account_id``, ``region``,
  ``type`` and ``q`` (a case-insensitive substring of the name or id, matched literally), paged
  (``offset``/``limit``) and sorted (``sort``: a field, ``-field`` for descending);
- ``GET /assets/summary``: counts by provider, account, region and type, with the task id and
  time of the latest sync, over the same filters.

Both are scoped like task lists: an asset belongs to the project of the last task that synced
its scope; a non-admin sees only its projects' assets, an admin all of them.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from cam_tasks.domain import (
    ASSET_SORTS,
    MAX_ASSET_TEXT_LENGTH,
    MAX_PAGE_SIZE,
    AssetFilter,
    AssetSort,
    AssetSummary,
    AssetSync,
    StoredAsset,
)
from cam_tasks.service import AssetService
from cam_tasks.web.auth import principal_of
from cam_tasks.web.envelope import success_response
from cam_tasks.web.operations import Operation, Reply, documented
from cam_tasks.web.requests import parse_query
from cam_tasks.web.schemas import MAX_OFFSET, UtcDatetime

__all__ = [
    "ASSETS_KEY",
    "AssetListView",
    "AssetSummaryView",
    "AssetView",
    "AssetsQuery",
    "asset_routes",
]

#: The :class:`AssetService` the handlers call.
ASSETS_KEY: Final = web.AppKey("cam_tasks.assets", AssetService)

asset_routes = web.RouteTableDef()

#: Longest provider, account, region or type a filter may name (real ones are far shorter).
_MAX_NAME_LENGTH: Final = 200
#: ``sort`` values: each sortable field, ascending, or descending with a leading ``-``.
_SORT_PATTERN: Final = "^-?(" + "|".join(ASSET_SORTS) + ")$"

# -- requests ---------------------------------------------------------------------------------


def _name_filter(description: str) -> Any:
    return Field(default=None, min_length=1, max_length=_MAX_NAME_LENGTH, description=description)


class AssetSummaryQuery(BaseModel):
    """The filters of ``GET /assets/summary`` (and of ``GET /assets``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str | None = _name_filter("Only assets of this provider (a `GET /providers` name).")
    account_id: str | None = _name_filter("Only assets of this cloud account.")
    region: str | None = _name_filter("Only assets in this region.")
    type: str | None = _name_filter("Only assets of this type (`ecs`, `rds`…).")
    q: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ASSET_TEXT_LENGTH,
        description="A case-insensitive substring of the asset's name or id, matched "
        "literally (no wildcards or patterns).",
    )

    def to_filter(self) -> AssetFilter:
        return AssetFilter(
            provider=self.provider,
            account_id=self.account_id,
            region=self.region,
            asset_type=self.type,
            text=self.q,
        )


class AssetsQuery(AssetSummaryQuery):
    """The query of ``GET /assets``: the filters, a page and an order."""

    sort: str = Field(
        default="region",
        pattern=_SORT_PATTERN,
        description="The field to order by, `-field` for descending: "
        + ", ".join(f"`{name}`" for name in ASSET_SORTS)
        + ". Ties are ordered by provider, account, region, type and id.",
    )
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    limit: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE)

    def order(self) -> tuple[AssetSort, bool]:
        """The sort field and whether it is descending."""
        name = self.sort.removeprefix("-")
        assert name in ASSET_SORTS  # the pattern allows nothing else
        sort: AssetSort = name  # type: ignore[assignment]
        return sort, self.sort.startswith("-")


_SUMMARY_KEYS: Final = frozenset(AssetSummaryQuery.model_fields)
_LIST_KEYS: Final = frozenset(AssetsQuery.model_fields)

# -- responses --------------------------------------------------------------------------------


class AssetSyncView(BaseModel):
    """The sync that last listed an asset's scope: its task and when."""

    task_id: str
    at: UtcDatetime

    @classmethod
    def of(cls, sync: AssetSync | None) -> AssetSyncView | None:
        return None if sync is None else cls(task_id=sync.task_id, at=sync.at)


class AssetView(BaseModel):
    """One stored asset: its scope, id, name, the provider's attributes, when this version was
    written (``synced_at``) and the sync that last listed it (``last_sync``)."""

    provider: str
    account_id: str
    region: str
    type: str
    asset_id: str
    name: str
    attributes: dict[str, Any]
    synced_at: UtcDatetime | None
    last_sync: AssetSyncView | None

    @classmethod
    def of(cls, asset: StoredAsset) -> AssetView:
        return cls(
            provider=asset.provider,
            account_id=asset.account_id,
            region=asset.region,
            type=asset.asset_type,
            asset_id=asset.asset_id,
            name=asset.name,
            attributes=asset.attributes,
            synced_at=asset.synced_at,
            last_sync=AssetSyncView.of(asset.last_sync),
        )


class AssetListView(BaseModel):
    """``data`` of ``GET /assets``: one page and how many assets matched."""

    assets: list[AssetView]
    total: int


class AssetCountView(BaseModel):
    value: str
    count: int


class AssetSummaryView(BaseModel):
    """``data`` of ``GET /assets/summary``: counts by field (each sorted by value), the total,
    and the latest sync among the counted assets (null when none was recorded)."""

    total: int
    by_provider: list[AssetCountView]
    by_account: list[AssetCountView]
    by_region: list[AssetCountView]
    by_type: list[AssetCountView]
    last_sync: AssetSyncView | None

    @classmethod
    def of(cls, summary: AssetSummary) -> AssetSummaryView:
        def counts(entries: Any) -> list[AssetCountView]:
            return [AssetCountView(value=e.value, count=e.count) for e in entries]

        return cls(
            total=summary.total,
            by_provider=counts(summary.by_provider),
            by_account=counts(summary.by_account),
            by_region=counts(summary.by_region),
            by_type=counts(summary.by_type),
            last_sync=AssetSyncView.of(summary.last_sync),
        )


# -- handlers ---------------------------------------------------------------------------------


@asset_routes.get("/assets")
@documented(
    Operation(
        "list_assets",
        "assets",
        "List synced assets",
        "The inventory the syncs wrote, read-only. Filters combine; `q` matches a "
        "case-insensitive substring of the name or id, literally. Only the assets of the "
        "caller's projects (an asset belongs to the project of the last task that synced its "
        "scope); an admin sees all. Unknown, repeated or bracketed keys are a 400.",
        (Reply(200, "One page of assets and how many matched.", AssetListView),),
        errors=frozenset({503}),
        query=AssetsQuery,
    )
)
async def list_assets(request: web.Request) -> web.Response:
    """A page of assets: ``data: {assets, total}``."""
    query = parse_query(request, AssetsQuery, _LIST_KEYS)
    sort, descending = query.order()
    page = await request.app[ASSETS_KEY].list(
        query.to_filter(),
        sort=sort,
        descending=descending,
        offset=query.offset,
        limit=query.limit,
        principal=principal_of(request),
    )
    view = AssetListView(assets=[AssetView.of(a) for a in page.assets], total=page.total)
    return success_response(view.model_dump(mode="json"))


@asset_routes.get("/assets/summary")
@documented(
    Operation(
        "summarize_assets",
        "assets",
        "Count synced assets",
        "Counts of the assets the caller sees by provider, account, region and type, the "
        "total, and the task id and time of the latest sync among them. Takes the filters of "
        "`GET /assets` (not its paging or order).",
        (Reply(200, "The counts.", AssetSummaryView),),
        errors=frozenset({503}),
        query=AssetSummaryQuery,
    )
)
async def summarize_assets(request: web.Request) -> web.Response:
    """Counts of the assets the caller sees: ``data`` is an ``AssetSummaryView``."""
    query = parse_query(request, AssetSummaryQuery, _SUMMARY_KEYS)
    summary = await request.app[ASSETS_KEY].summary(
        query.to_filter(), principal=principal_of(request)
    )
    return success_response(AssetSummaryView.of(summary).model_dump(mode="json"))
