"""The ``discover_assets`` executor: find what an account holds, everywhere, and inventory it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from cam_tasks.executor.context import TaskContext
from cam_tasks.executor.sync_assets import (
    InventoryExecutor,
    ScopeParams,
    ScopeResult,
    counts_summary,
    resolve_regions,
    skipped_scopes,
    total_counts,
)

__all__ = ["DiscoverAssetsExecutor", "DiscoverAssetsParams"]

logger = logging.getLogger(__name__)


class DiscoverAssetsParams(ScopeParams):
    """``{provider, account_id, regions?}``: every asset type the provider lists is looked at."""


class DiscoverAssetsExecutor(InventoryExecutor):
    """Walks every asset type the provider can list in ``regions`` (default: all the
    account's regions) and syncs each (region, type) scope into the inventory exactly as
    ``sync_assets`` does.

    Every scope is synced, empty ones included: a scope the provider now reports empty must
    lose the assets stored for it, or the inventory would keep ghosts. Only non-empty scopes
    are reported as found.

    Result: the five counts, ``regions`` and ``asset_types`` where assets were found, and
    ``by_region``: ``{region: {asset_type: count}}`` over non-empty scopes, and ``skipped``
    (``region``, ``asset_type``, ``reason`` of each scope the provider was denied).
    PermanentError for an unknown account or region.
    """

    type = "discover_assets"
    base_params = DiscoverAssetsParams

    async def execute(self, params: DiscoverAssetsParams, ctx: TaskContext) -> dict[str, Any]:
        provider = self._providers.get(params.provider)
        regions = await resolve_regions(provider, params.account_id, params.regions)
        scopes = self.scopes(params, regions, sorted(provider.asset_types))
        results = await self.sync(
            scopes, provider=provider, ctx=ctx, verb="Discovering", summarize=_summarize
        )
        summary = _summarize(results)
        counts = total_counts(results)
        ctx.report(
            100.0,
            f"Discovered {counts.total_count} assets of {len(summary['asset_types'])} types in "
            f"{len(summary['regions'])} regions: {counts_summary(counts)}",
            step=len(scopes),
            total_steps=len(scopes),
        )
        logger.info(
            "discovered %d assets in %d scopes",
            counts.total_count,
            len(scopes),
            extra={"task_id": ctx.task_id, "type": self.type, "attempt": ctx.attempt},
        )
        return summary


def _summarize(results: Sequence[ScopeResult]) -> dict[str, Any]:
    by_region: dict[str, dict[str, int]] = {}
    for result in results:
        if result.counts.total_count:
            found = by_region.setdefault(result.scope.region, {})
            found[result.scope.asset_type] = result.counts.total_count
    return {
        **total_counts(results).model_dump(),
        "regions": list(by_region),
        "asset_types": sorted({t for found in by_region.values() for t in found}),
        "by_region": by_region,
        "skipped": skipped_scopes(results),
    }
