"""What an asset provider is: the seam between cam_tasks and one cloud's inventory APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Protocol

from cam_tasks.domain import Asset, PermanentError

__all__ = ["AssetPage", "AssetProvider", "ScopeDeniedError"]


class AssetProvider(Protocol):
    """Lists the assets of one cloud (``"aliyun"``, ``"aws"``…) for the sync executors.

    - ``name``: the provider's name as tasks refer to it (``params.provider``), unique in a
      registry.
    - ``asset_types``: every asset type it can list (``"ecs"``, ``"rds"``…). Task parameters
      naming another type are rejected at submit time.
    - ``regions(account_id)``: the regions the account can hold assets in.
    - ``list_assets(account_id, region, asset_type)``: the assets of one scope, as an async
      iterator of pages, so that a scope of 100k assets streams through a sync without ever
      being one list in memory. Every asset must carry that ``region`` and ``asset_type``.
      Ids may repeat across pages (paging APIs do that while data changes); the sync counts
      each id once. A page may be an :class:`AssetPage` telling how many assets the whole
      scope holds, which lets the sync report a finer percentage.

    Optional: a ``kind`` attribute (``"static"``, ``"aws"``, ``"aliyun"``…) naming the
    implementation, shown by ``GET /providers``; providers without one are shown as
    ``"plugin"`` (see :func:`cam_tasks.assets.provider_kind`).

    Credentials: a provider obtains them itself, from ``account_id`` (its own configuration,
    a secrets store, an assumed role…). They are never task parameters, so they are never
    stored with a task, logged or returned by the API.

    Errors: raise :class:`PermanentError` for what retrying cannot fix (unknown account or
    region) and :class:`RetryableError` for transient failures (throttling, timeouts) that its
    own retries did not overcome; anything else counts as retryable. Raise
    :class:`ScopeDeniedError` when one scope cannot be listed (access denied to that service or
    region): the sync reports the scope as skipped and goes on with the others. Calls may be
    cancelled at any ``await``.
    """

    name: str
    asset_types: frozenset[str]

    async def regions(self, account_id: str) -> list[str]: ...

    def list_assets(
        self, account_id: str, region: str, asset_type: str
    ) -> AsyncIterator[list[Asset]]: ...


class AssetPage(list[Asset]):
    """A page of assets that also carries ``scope_total``: how many assets the whole scope
    holds according to the API (Alibaba Cloud's ``TotalCount``), or None when it does not say.
    A plain ``list[Asset]`` page is the same as one with ``scope_total=None``."""

    __slots__ = ("scope_total",)

    def __init__(self, assets: Iterable[Asset] = (), *, scope_total: int | None = None) -> None:
        super().__init__(assets)
        self.scope_total = scope_total


class ScopeDeniedError(PermanentError):
    """The provider may not list this scope (access denied to the service, region not enabled).

    The sync executors record the scope under ``skipped`` with ``reason`` and go on; only when
    every scope is denied does the task fail. ``reason`` must never hold a credential."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
