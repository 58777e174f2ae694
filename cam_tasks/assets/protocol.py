"""What an asset provider is: the seam between cam_tasks and one cloud's inventory APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from cam_tasks.domain import Asset

__all__ = ["AssetProvider"]


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
      each id once.

    Credentials: a provider obtains them itself, from ``account_id`` (its own configuration,
    a secrets store, an assumed role…). They are never task parameters, so they are never
    stored with a task, logged or returned by the API.

    Errors: raise :class:`PermanentError` for what retrying cannot fix (unknown account or
    region, access denied) and :class:`RetryableError` for transient failures (throttling,
    timeouts); anything else counts as retryable. Calls may be cancelled at any ``await``.
    """

    name: str
    asset_types: frozenset[str]

    async def regions(self, account_id: str) -> list[str]: ...

    def list_assets(
        self, account_id: str, region: str, asset_type: str
    ) -> AsyncIterator[list[Asset]]: ...
