"""Cloud assets as the inventory stores them."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from cam_tasks.domain.clock import utc

__all__ = [
    "ASSET_KEY_ORDER",
    "ASSET_SORTS",
    "MAX_ASSET_TEXT_LENGTH",
    "Asset",
    "AssetCount",
    "AssetFilter",
    "AssetScope",
    "AssetSort",
    "AssetSummary",
    "AssetSync",
    "StoredAsset",
    "SyncCounts",
    "summarize_assets",
]


class Asset(BaseModel):
    """One cloud resource (an ECS instance, an RDS database…) as a provider reports it.

    ``attributes`` is provider-specific and JSON-able. It must never hold credentials.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    asset_id: str = Field(min_length=1)
    asset_type: str = Field(min_length=1)
    region: str = Field(min_length=1)
    name: str = ""
    attributes: dict[str, Any] = Field(default_factory=dict)

    def fingerprint(self) -> str:
        """A stable digest of what the inventory compares to tell 'updated' from 'unchanged'."""
        payload = orjson.dumps(
            {"name": self.name, "attributes": self.attributes}, option=orjson.OPT_SORT_KEYS
        )
        return hashlib.blake2b(payload, digest_size=16).hexdigest()


class AssetScope(BaseModel):
    """The slice of the inventory one sync step owns: assets missing from it are 'removed'."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str
    account_id: str
    region: str
    asset_type: str


class SyncCounts(BaseModel):
    """What one inventory write changed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    total_count: int = 0
    added_count: int = 0
    updated_count: int = 0
    unchanged_count: int = 0
    removed_count: int = 0

    def __add__(self, other: SyncCounts) -> SyncCounts:
        return SyncCounts(
            total_count=self.total_count + other.total_count,
            added_count=self.added_count + other.added_count,
            updated_count=self.updated_count + other.updated_count,
            unchanged_count=self.unchanged_count + other.unchanged_count,
            removed_count=self.removed_count + other.removed_count,
        )


# -- what the inventory answers readers ---------------------------------------------------------

#: Longest text an asset search may match on names and ids: far past any real name, short
#: enough that a match stays cheap.
MAX_ASSET_TEXT_LENGTH: Final = 100
#: What an asset list may be sorted by; ties are broken by the asset's key, so pages are stable.
ASSET_SORTS: Final = ("region", "asset_type", "asset_id", "name", "provider", "synced_at")
AssetSort = Literal["region", "asset_type", "asset_id", "name", "provider", "synced_at"]


class AssetSync(BaseModel):
    """The sync that last listed a scope: its task, that task's project and when. Every asset
    of the scope carries it, so an asset belongs to the project of the last task that synced
    its scope."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_id: str
    project_id: str | None = None
    at: datetime

    _utc = field_validator("at")(utc)


class StoredAsset(BaseModel):
    """An asset as the inventory holds it: its scope, what the provider said, when this version
    was written (``synced_at``) and the sync that last listed its scope (``last_sync``; None
    for assets written before syncs were recorded)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str
    account_id: str
    region: str
    asset_type: str
    asset_id: str
    name: str = ""
    attributes: dict[str, Any] = Field(default_factory=dict)
    synced_at: datetime | None = None
    last_sync: AssetSync | None = None

    _utc = field_validator("synced_at")(lambda v: None if v is None else utc(v))


class AssetFilter(BaseModel):
    """Which stored assets a read is about. Criteria combine; ``text`` is a case-insensitive
    substring of the name or the id (matched literally: never a pattern); ``project_ids``
    None means every project, else only assets last synced by a task of one of them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str | None = None
    account_id: str | None = None
    region: str | None = None
    asset_type: str | None = None
    text: str | None = Field(default=None, min_length=1, max_length=MAX_ASSET_TEXT_LENGTH)
    project_ids: frozenset[str] | None = None

    def matches(self, asset: StoredAsset) -> bool:
        """Whether ``asset`` is one this filter selects (the rule every store applies)."""
        for name in ("provider", "account_id", "region", "asset_type"):
            wanted = getattr(self, name)
            if wanted is not None and getattr(asset, name) != wanted:
                return False
        if self.project_ids is not None:
            project = None if asset.last_sync is None else asset.last_sync.project_id
            if project not in self.project_ids:
                return False
        if self.text is not None:
            # The rule MongoDB applies to the escaped text under $regex with option "i".
            needle = re.compile(re.escape(self.text), re.IGNORECASE)
            return bool(needle.search(asset.name) or needle.search(asset.asset_id))
        return True


class AssetCount(BaseModel):
    """How many assets share one value of a field (``value``: a provider, account, region…)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: str
    count: int


class AssetSummary(BaseModel):
    """Counts of the selected assets by provider, account, region and type (each sorted by
    value), their total, and the most recent sync among them (None when there is none)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    total: int = 0
    by_provider: tuple[AssetCount, ...] = ()
    by_account: tuple[AssetCount, ...] = ()
    by_region: tuple[AssetCount, ...] = ()
    by_type: tuple[AssetCount, ...] = ()
    last_sync: AssetSync | None = None


#: The fields an asset list is ordered by after the chosen one, so every page is stable.
ASSET_KEY_ORDER: Final = ("provider", "account_id", "region", "asset_type", "asset_id")


def summarize_assets(assets: Iterable[StoredAsset]) -> AssetSummary:
    """The :class:`AssetSummary` of ``assets`` (what every store answers for its selection)."""
    counters: dict[str, Counter[str]] = {name: Counter() for name in _SUMMARY_FIELDS}
    total = 0
    last: AssetSync | None = None
    for asset in assets:
        total += 1
        for name, counter in counters.items():
            counter[getattr(asset, name)] += 1
        sync = asset.last_sync
        if sync is not None and (last is None or (sync.at, sync.task_id) > (last.at, last.task_id)):
            last = sync
    counts = {
        f"by_{label}": tuple(AssetCount(value=v, count=n) for v, n in sorted(counter.items()))
        for label, counter in zip(_SUMMARY_LABELS, counters.values(), strict=True)
    }
    return AssetSummary(total=total, last_sync=last, **counts)


_SUMMARY_FIELDS: Final = ("provider", "account_id", "region", "asset_type")
_SUMMARY_LABELS: Final = ("provider", "account", "region", "type")
