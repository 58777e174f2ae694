"""Cloud assets as the inventory stores them."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Asset", "AssetScope", "SyncCounts"]


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
