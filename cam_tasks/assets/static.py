"""A provider that serves a fixed inventory from a file or a mapping: demos, tests, air-gapped
installs, and clouds whose inventory is exported by another tool.

The inventory is a TOML (``.toml``) or JSON (``.json``) file, or the same structure as a
mapping::

    [accounts."123".regions."cn-shenzhen"]
    ecs = [
      { id = "i-wz9a1", name = "web-1", attributes = { cpu = 2, status = "Running" } },
    ]
    rds = [ { id = "rm-wz9b1", name = "orders-db", attributes = { engine = "MySQL" } } ]

    [accounts."123".regions."cn-beijing"]
    ecs = []                 # a region the account has, with nothing of that type in it

That is: ``accounts`` → account id → ``regions`` → region → asset type → list of assets, each
with an ``id`` (required), an optional ``name`` and optional JSON-able ``attributes``. Account
and asset ids may be written as integers; they are strings from then on. The provider's
``asset_types`` are every type named anywhere in the file; an account's regions are the ones
listed under it, in file order.

The whole inventory is parsed and checked at construction (ConfigurationError naming the file
and the problem), so listing never fails on bad data; an unknown account or region fails with
PermanentError, as a cloud API would refuse it.
"""

from __future__ import annotations

import asyncio
import os
import tomllib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cam_tasks.domain import Asset, ConfigurationError, PermanentError

__all__ = ["StaticAssetProvider"]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    id: str = Field(min_length=1)
    name: str = ""
    attributes: dict[str, Any] = Field(default_factory=dict)


class _Account(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    regions: dict[str, dict[str, list[_Entry]]] = Field(default_factory=dict)


class _InventoryFile(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    accounts: dict[str, _Account]


class StaticAssetProvider:
    """An :class:`~cam_tasks.assets.protocol.AssetProvider` over a fixed inventory.

    ``latency_s`` is awaited before every page (``asyncio.sleep``), simulating a cloud API's
    round trip so that progress can be watched in a demo; ``page_size`` is the number of
    assets per page. Immutable after construction, so safe for any number of concurrent syncs.

    Raises ConfigurationError when the file cannot be read or parsed, or has the wrong shape;
    ValueError for a negative ``latency_s`` or a ``page_size`` below 1.
    """

    kind = "static"

    def __init__(
        self,
        name: str,
        inventory: Mapping[str, Any] | str | os.PathLike[str],
        *,
        latency_s: float = 0.0,
        page_size: int = 500,
    ) -> None:
        if latency_s < 0:
            raise ValueError("latency_s must be >= 0")
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        self.name = name
        self.latency_s = latency_s
        self.page_size = page_size
        if isinstance(inventory, Mapping):
            source, raw = "inventory mapping", _stringify_keys(inventory)
        else:
            source, raw = str(inventory), _read(Path(inventory))
        try:
            parsed = _InventoryFile.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in err['loc']) or '(top)'}: {err['msg']}"
                for err in exc.errors(include_url=False)
            )
            raise ConfigurationError(f"{source}: not an asset inventory: {problems}") from None
        # account -> region -> asset type -> assets, built once: listing only slices lists.
        self._accounts: dict[str, dict[str, dict[str, list[Asset]]]] = {
            account_id: {
                region: {
                    asset_type: [
                        Asset(
                            asset_id=entry.id,
                            asset_type=asset_type,
                            region=region,
                            name=entry.name,
                            attributes=entry.attributes,
                        )
                        for entry in entries
                    ]
                    for asset_type, entries in types.items()
                }
                for region, types in account.regions.items()
            }
            for account_id, account in parsed.accounts.items()
        }
        self.asset_types: frozenset[str] = frozenset(
            asset_type
            for regions in self._accounts.values()
            for types in regions.values()
            for asset_type in types
        )

    def __repr__(self) -> str:
        return f"StaticAssetProvider({self.name!r}, accounts={sorted(self._accounts)})"

    async def regions(self, account_id: str) -> list[str]:
        """The account's regions in file order; PermanentError for an unknown account."""
        return list(self._account(account_id))

    async def list_assets(
        self, account_id: str, region: str, asset_type: str
    ) -> AsyncIterator[list[Asset]]:
        """Pages of up to ``page_size`` assets, each after ``latency_s``. A type the region
        does not hold yields nothing; PermanentError for an unknown account or region."""
        regions = self._account(account_id)
        if region not in regions:
            raise PermanentError(
                f"provider {self.name!r}: account {str(account_id)!r} has no region "
                f"{region!r}; its regions: {', '.join(regions) or '(none)'}"
            )
        assets = regions[region].get(asset_type, [])
        start = 0
        while True:
            await asyncio.sleep(self.latency_s)  # the simulated API round trip of this page
            page = assets[start : start + self.page_size]
            if not page:
                return
            yield page
            start += self.page_size

    def _account(self, account_id: str) -> dict[str, dict[str, list[Asset]]]:
        try:
            return self._accounts[str(account_id)]
        except KeyError:
            raise PermanentError(
                f"provider {self.name!r} has no account {str(account_id)!r}"
            ) from None


def _read(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ConfigurationError(f"{path}: inventory files must end in .toml or .json")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read inventory: {exc.strerror}") from None
    try:
        if suffix == ".toml":
            return tomllib.loads(data.decode("utf-8"))
        return orjson.loads(data)
    except (tomllib.TOMLDecodeError, orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: cannot parse inventory: {exc}") from None


def _stringify_keys(value: Any) -> Any:
    """Mapping keys as strings: a mapping written in Python may use ``123`` as an account id."""
    if isinstance(value, Mapping):
        return {str(k): _stringify_keys(v) for k, v in value.items()}
    return value
