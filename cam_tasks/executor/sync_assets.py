"""The ``sync_assets`` executor: sync chosen asset types of one cloud account into the inventory.

Also home of what both asset executors share (``discover_assets`` imports it): the parameter
base model, :func:`provider_params_model` which binds a model to a provider registry, region
resolution, and :func:`sync_scopes`, the walk over (region, asset type) scopes with progress
and partial results. The diff and the writes themselves are :func:`cam_tasks.assets.sync_scope`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, create_model, field_validator
from pydantic_core import PydanticCustomError

from cam_tasks.assets import (
    DEFAULT_BATCH_SIZE,
    AssetProvider,
    PageProgress,
    ProviderRegistry,
    ScopeDeniedError,
    check_asset_types,
    sync_scope,
)
from cam_tasks.domain import AssetScope, AssetSync, Clock, PermanentError, SyncCounts
from cam_tasks.executor.context import TaskContext
from cam_tasks.repository.protocol import AssetInventory

__all__ = [
    "InventoryExecutor",
    "ScopeParams",
    "ScopeResult",
    "SyncAssetsExecutor",
    "SyncAssetsParams",
    "counts_summary",
    "provider_params_model",
    "resolve_regions",
    "skipped_scopes",
    "sync_scopes",
    "total_counts",
]

logger = logging.getLogger(__name__)

_Name = Annotated[str, Field(min_length=1)]
_ParamsT = TypeVar("_ParamsT", bound="ScopeParams")


#: Largest account id taken as a number: the largest integer every JSON client (JavaScript's
#: numbers) holds exactly. Larger ids are sent as strings.
MAX_NUMERIC_ACCOUNT_ID = 2**53 - 1


def _account_id_as_str(value: object) -> object:
    # Account ids look numeric ("123") and JSON clients send them as numbers; store one form.
    # A JSON number without a fraction is an integer, whatever its spelling (12.0, 1.2e1).
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if not math.isfinite(value) or value != int(value):
        raise PydanticCustomError("account_id", "a numeric account id must be a whole number")
    if not 0 <= value <= MAX_NUMERIC_ACCOUNT_ID:
        raise PydanticCustomError(
            "account_id",
            "a numeric account id must be from 0 to {maximum}; send others as strings",
            {"maximum": MAX_NUMERIC_ACCOUNT_ID},
        )
    return str(int(value))


def _unique(value: list[str] | None) -> list[str] | None:
    if value is not None and len(set(value)) != len(value):
        repeated = sorted({item for item in value if value.count(item) > 1})
        raise PydanticCustomError(
            "unique_items",
            "items must be unique; repeated: {repeated}",
            {"repeated": ", ".join(repr(item) for item in repeated)},
        )
    return value


class ScopeParams(BaseModel):
    """What names a set of scopes: a provider, an account and optionally some regions.

    ``regions=None`` means every region of the account. Only the shape is checked here; a
    model bound to a registry by :func:`provider_params_model` also checks the provider.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: _Name
    account_id: _Name
    regions: list[_Name] | None = Field(default=None, min_length=1)

    _account = field_validator("account_id", mode="before")(_account_id_as_str)
    _unique_regions = field_validator("regions")(_unique)


class SyncAssetsParams(ScopeParams):
    """``{provider, account_id, asset_types, regions?}``; ``asset_types``: one or more, unique."""

    asset_types: list[_Name] = Field(min_length=1)

    _unique_types = field_validator("asset_types")(_unique)


def provider_params_model(model: type[_ParamsT], providers: ProviderRegistry) -> type[_ParamsT]:
    """A subclass of ``model`` (same name) that also rejects a ``provider`` missing from
    ``providers`` and, when the model has ``asset_types``, types that provider cannot list.

    Each asset executor builds its own, so ``ExecutorRegistry.validate`` reports those with
    field details (``["params", "provider"]``, ``["params", "asset_types"]``) at submit time.
    The registry is read at validation time, so providers registered later are accepted.
    """

    def registered(cls: type[BaseModel], value: str) -> str:
        return providers.check_name(value)

    def supported(cls: type[BaseModel], value: list[str], info: ValidationInfo) -> list[str]:
        name = info.data.get("provider")
        if name is None:  # the provider was rejected already; its error says why
            return value
        return check_asset_types(providers.get(name), value)

    def document(schema: dict[str, Any]) -> None:
        # The schema says what validation accepts: the registered names, and the asset types
        # some registered provider lists (which ones go with which provider is checked above).
        # And its other rules: a numeric account id is taken as its digits; lists are unique.
        properties = schema.get("properties", {})
        if "provider" in properties:
            properties["provider"]["enum"] = sorted(p.name for p in providers)
        if "account_id" in properties:
            account = properties["account_id"]
            properties["account_id"] = {
                "title": account.get("title", "Account Id"),
                "anyOf": [
                    {"type": "string", "minLength": 1},
                    {"type": "integer", "minimum": 0, "maximum": MAX_NUMERIC_ACCOUNT_ID},
                ],
                "description": "The cloud account; a number is taken as its decimal digits.",
            }
        types = properties.get("asset_types", {})
        if isinstance(types.get("items"), dict):
            types["items"]["enum"] = sorted({t for p in providers for t in p.asset_types})
            types["uniqueItems"] = True
        for choice in properties.get("regions", {}).get("anyOf", []):
            if choice.get("type") == "array":
                choice["uniqueItems"] = True

    validators: dict[str, Any] = {"_registered_provider": field_validator("provider")(registered)}
    if "asset_types" in model.model_fields:
        validators["_supported_asset_types"] = field_validator("asset_types")(supported)
    bound = create_model(model.__name__, __base__=model, __validators__=validators)
    bound.model_config["json_schema_extra"] = document
    bound.model_rebuild(force=True)
    return bound


async def resolve_regions(
    provider: AssetProvider, account_id: str, wanted: Sequence[str] | None
) -> list[str]:
    """``wanted``, or every region of the account when None. PermanentError for a region the
    account does not have (and whatever ``provider.regions`` raises, e.g. unknown account)."""
    available = await provider.regions(account_id)
    if wanted is None:
        return list(available)
    unknown = [region for region in wanted if region not in available]
    if unknown:
        missing = ", ".join(repr(region) for region in unknown)
        raise PermanentError(
            f"account {account_id!r} of provider {provider.name!r} has no region {missing}; "
            f"its regions: {', '.join(available) or '(none)'}"
        )
    return list(wanted)


@dataclass(frozen=True, slots=True)
class ScopeResult:
    """The counts of one synced (or, in a partial result, partly synced) scope; ``skipped``
    holds the reason when the provider was denied the scope (its counts are then zero)."""

    scope: AssetScope
    counts: SyncCounts
    skipped: str | None = None


def skipped_scopes(results: Sequence[ScopeResult]) -> list[dict[str, str]]:
    """``[{region, asset_type, reason}]`` of the scopes the provider was denied."""
    return [
        {"region": r.scope.region, "asset_type": r.scope.asset_type, "reason": r.skipped}
        for r in results
        if r.skipped is not None
    ]


def total_counts(results: Sequence[ScopeResult]) -> SyncCounts:
    """The sum of the scopes' counts."""
    return sum((r.counts for r in results), SyncCounts())


def counts_summary(counts: SyncCounts) -> str:
    """``"A added, U updated, C unchanged, R removed"``."""
    return (
        f"{counts.added_count} added, {counts.updated_count} updated, "
        f"{counts.unchanged_count} unchanged, {counts.removed_count} removed"
    )


async def sync_scopes(
    scopes: Sequence[AssetScope],
    *,
    provider: AssetProvider,
    inventory: AssetInventory,
    clock: Clock,
    ctx: TaskContext,
    verb: str,
    summarize: Callable[[Sequence[ScopeResult]], dict[str, Any]],
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[ScopeResult]:
    """Run :func:`sync_scope` over ``scopes`` in order and return their results.

    Progress: before scope ``k`` of ``n`` it reports ``(k-1)/n`` percent and the message
    ``"{verb} region {region}: {asset_type} {k}/{n}"`` with ``step=k, total_steps=n`` and
    ``step_name="{verb} {asset_type} in {region}"``; after
    every page, ``"{verb} {region}: {asset_type} page {p} · {assets} assets"`` (assets
    received by the whole task so far, with thousands separators) and, when the provider tells
    the scope's total (:class:`~cam_tasks.assets.AssetPage`), a percent that moves within the
    scope's share. The percent never decreases (``TaskContext.report`` keeps it so).

    A scope the provider is denied (:class:`~cam_tasks.assets.ScopeDeniedError`) is kept as a
    result with ``skipped`` set and nothing written or removed; the others go on. When every
    scope is denied, PermanentError naming the reasons.

    When cancelled, it sets ``ctx.partial_result`` to ``summarize`` of the scopes done plus the
    one interrupted, with ``"message": "{synced} of {received} assets synced"`` (synced:
    added + updated + unchanged as acknowledged so far; received: distinct assets the provider
    has returned so far), then lets the cancellation propagate.
    """
    done: list[ScopeResult] = []
    current: ScopeResult | None = None
    total = len(scopes)
    received_before = 0  # distinct assets of the scopes finished before the current one

    def keep(scope: AssetScope) -> Callable[[SyncCounts], None]:
        def on_page(counts: SyncCounts) -> None:
            nonlocal current
            current = ScopeResult(scope, counts)

        return on_page

    def report_page(scope: AssetScope, index: int) -> Callable[[PageProgress], None]:
        def on_progress(page: PageProgress) -> None:
            share = 0.0
            if page.scope_total:
                share = min(1.0, page.received / page.scope_total)
            ctx.report(
                100.0 * (index - 1 + share) / total,
                f"{verb} {scope.region}: {scope.asset_type} page {page.pages} · "
                f"{received_before + page.received:,} assets",
            )

        return on_progress

    try:
        for index, scope in enumerate(scopes, start=1):
            ctx.report(
                100.0 * (index - 1) / total,
                f"{verb} region {scope.region}: {scope.asset_type} {index}/{total}",
                step=index,
                total_steps=total,
                step_name=f"{verb} {scope.asset_type} in {scope.region}",
            )
            current = ScopeResult(scope, SyncCounts())
            now = clock.now()
            try:
                counts = await sync_scope(
                    inventory,
                    provider,
                    scope,
                    now=now,
                    sync=AssetSync(task_id=ctx.task_id, project_id=ctx.project_id, at=now),
                    batch_size=batch_size,
                    on_page=keep(scope),
                    on_progress=report_page(scope, index),
                )
            except ScopeDeniedError as exc:
                logger.warning(
                    "skipped %s in %s: %s",
                    scope.asset_type,
                    scope.region,
                    exc.reason,
                    extra={"task_id": ctx.task_id, "type": ctx.task_type, "attempt": ctx.attempt},
                )
                done.append(ScopeResult(scope, SyncCounts(), skipped=exc.reason))
            else:
                done.append(ScopeResult(scope, counts))
                received_before += counts.total_count
            current = None
    except asyncio.CancelledError:
        partial = done if current is None else [*done, current]
        so_far = total_counts(partial)
        synced = so_far.added_count + so_far.updated_count + so_far.unchanged_count
        ctx.partial_result = {
            **summarize(partial),
            "message": f"{synced} of {so_far.total_count} assets synced",
        }
        raise
    if done and all(r.skipped is not None for r in done):
        reasons = sorted({r.skipped for r in done if r.skipped is not None})
        raise PermanentError(f"every scope was denied: {'; '.join(reasons)}")
    return done


class InventoryExecutor:
    """What the executors that write the asset inventory share: their collaborators, a params
    model (``base_params``) bound to this provider registry, so that an unknown provider or
    asset type is refused at submit time with field details, and their keys:

    - ``unique_key`` ``<type>:<provider>:<account_id>``: a second identical submit (a double
      click, a schedule firing while someone clicks "sync now") joins the active task;
    - ``concurrency_key`` ``assets:<provider>:<account_id>``, limited to 1 (``assets:*``): a
      sync and a discovery of one account never write its inventory at once, on any instance.

    Both are defaults: a submit may name its own keys, or opt out with ``""``; the
    configuration's ``[concurrency_limits]`` may set another limit for ``assets:*``.
    """

    base_params: ClassVar[type[ScopeParams]]
    type: ClassVar[str]
    concurrency_limits: ClassVar[dict[str, int]] = {"assets:*": 1}

    def unique_key(self, params: ScopeParams) -> str:
        return f"{self.type}:{params.provider}:{params.account_id}"

    def concurrency_key(self, params: ScopeParams) -> str:
        return f"assets:{params.provider}:{params.account_id}"

    def __init__(
        self,
        providers: ProviderRegistry,
        inventory: AssetInventory,
        clock: Clock,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self._providers = providers
        self._inventory = inventory
        self._clock = clock
        self._batch_size = batch_size
        self.params_model: type[ScopeParams] = provider_params_model(self.base_params, providers)

    async def sync(
        self,
        scopes: Sequence[AssetScope],
        *,
        provider: AssetProvider,
        ctx: TaskContext,
        verb: str,
        summarize: Callable[[Sequence[ScopeResult]], dict[str, Any]],
    ) -> list[ScopeResult]:
        """:func:`sync_scopes` over this executor's inventory, clock and batch size."""
        return await sync_scopes(
            scopes,
            provider=provider,
            inventory=self._inventory,
            clock=self._clock,
            ctx=ctx,
            verb=verb,
            summarize=summarize,
            batch_size=self._batch_size,
        )

    @staticmethod
    def scopes(
        params: ScopeParams, regions: Sequence[str], asset_types: Sequence[str]
    ) -> list[AssetScope]:
        """Every (region, asset type) scope of the account, regions outermost."""
        return [
            AssetScope(
                provider=params.provider,
                account_id=params.account_id,
                region=region,
                asset_type=asset_type,
            )
            for region in regions
            for asset_type in asset_types
        ]


class SyncAssetsExecutor(InventoryExecutor):
    """Syncs ``asset_types`` of one account of ``provider`` in ``regions`` (default: all the
    account's regions) into the inventory, one (region, asset type) scope after another.

    Result: ``total_count``, ``added_count``, ``updated_count``, ``unchanged_count``,
    ``removed_count``, ``regions``, ``asset_types``, ``by_scope`` (one entry per synced scope:
    ``region``, ``asset_type`` and its counts) and ``skipped`` (``region``, ``asset_type`` and
    ``reason`` of each scope the provider was denied). PermanentError for an unknown account or
    region; provider and inventory errors propagate (retryable unless permanent).
    Re-running is safe: a sync is idempotent.
    """

    type = "sync_assets"
    base_params = SyncAssetsParams

    async def execute(self, params: SyncAssetsParams, ctx: TaskContext) -> dict[str, Any]:
        provider = self._providers.get(params.provider)
        regions = await resolve_regions(provider, params.account_id, params.regions)
        scopes = self.scopes(params, regions, params.asset_types)

        def summarize(results: Sequence[ScopeResult]) -> dict[str, Any]:
            return {
                **total_counts(results).model_dump(),
                "regions": regions,
                "asset_types": list(params.asset_types),
                "by_scope": [
                    {"region": r.scope.region, "asset_type": r.scope.asset_type}
                    | r.counts.model_dump()
                    for r in results
                    if r.skipped is None
                ],
                "skipped": skipped_scopes(results),
            }

        results = await self.sync(
            scopes, provider=provider, ctx=ctx, verb="Syncing", summarize=summarize
        )
        counts = total_counts(results)
        ctx.report(
            100.0,
            f"Synced {counts.total_count} assets: {counts_summary(counts)}",
            step=len(scopes),
            total_steps=len(scopes),
        )
        logger.info(
            "synced %d assets in %d scopes",
            counts.total_count,
            len(scopes),
            extra={"task_id": ctx.task_id, "type": self.type, "attempt": ctx.attempt},
        )
        return summarize(results)
