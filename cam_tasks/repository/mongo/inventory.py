"""Asset inventory stores: what the last sync saw of each (provider, account, region, type) scope.

The MongoDB backend of :class:`~cam_tasks.repository.protocol.AssetInventory` and pass one
contract suite (``tests/repository/test_inventory_contract.py``):

the ``assets`` collection. One document per asset::

      {provider, account_id, region, asset_type, asset_id,   # the unique key
       name, attributes, fingerprint, synced_at}

  ``fingerprint`` is :meth:`Asset.fingerprint` of the stored version, so a sync compares
  fingerprints without reading attributes back; ``synced_at`` is when that version was written
  (unchanged assets are not rewritten). ``_id`` is left to the server: the key fields carry a
  unique index instead, which lets upserts filter on exactly that key (the server retries an
  upsert that races another one on such a key rather than failing it).

Both reject an upsert whose region or type is not the scope's with ``ValueError``: the scope is
the key, and an asset filed under the wrong one would be removed by the next sync of its own.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, DeleteMany, ReplaceOne, UpdateMany

from cam_tasks.domain import (
    ASSET_KEY_ORDER,
    Asset,
    AssetCount,
    AssetFilter,
    AssetScope,
    AssetSort,
    AssetSummary,
    AssetSync,
    StoredAsset,
)
from cam_tasks.repository.documents import ASSET_SORT_FIELDS, asset_criteria, check_scope
from cam_tasks.repository.mongo.driver import aggregate, is_mongomock, unavailable_as_domain_error
from cam_tasks.repository.mongo.indexes import INVENTORY_INDEXES, create_indexes

__all__ = ["MongoAssetInventory"]

# Removals go into DeleteMany operations of at most this many ids each, so that no single
# operation nears the 16 MiB BSON document limit however many assets vanished at once.
_REMOVALS_PER_OPERATION = 10_000


class MongoAssetInventory:
    """The inventory in a MongoDB collection (``assets`` unless told otherwise).

    ``database`` is a PyMongo async database, a Motor database or a mongomock-motor database;
    only the collection API they share is used, and the handle is not closed by this class.

    Raises DatabaseUnavailableError when the server cannot be reached. Safe for concurrent use
    by many coroutines and processes: every write is idempotent (replace-by-key, delete-by-key),
    so a repeated or interrupted sync converges to the provider's state.
    """

    def __init__(self, database: Any, *, collection_name: str = "assets") -> None:
        self._collection: Any = database.get_collection(collection_name)
        # mongomock (<= 4.3, behind mongomock-motor and so behind memory://) rejects the `sort`
        # argument PyMongo >= 4.11 passes when it adds a ReplaceOne to a bulk write
        # (mongomock/mongomock#912). There the upsert is an UpdateMany on the full unique key,
        # which $sets every stored field: the same one-document replacement. Real servers get
        # ReplaceOne, which keeps the bulk write retryable (a multi-update would not).
        self._replace_in_bulk = not is_mongomock(self._collection)

    async def initialize(self) -> None:
        """Create :data:`INVENTORY_INDEXES`. Idempotent: identical existing indexes are kept;
        one that exists under the same name with another definition raises ConfigurationError
        (it needs a migration). DatabaseUnavailableError when the server cannot be reached."""
        await create_indexes(self._collection, INVENTORY_INDEXES)

    async def fingerprints(self, scope: AssetScope) -> dict[str, str]:
        """``asset_id -> fingerprint`` of the scope: one query, projected to those two fields."""
        result: dict[str, str] = {}
        async with unavailable_as_domain_error():
            cursor = self._collection.find(
                scope.model_dump(), {"_id": 0, "asset_id": 1, "fingerprint": 1}
            )
            async for document in cursor:
                result[document["asset_id"]] = document["fingerprint"]
        return result

    async def write(
        self,
        scope: AssetScope,
        *,
        upserts: Sequence[Asset],
        removals: Collection[str],
        now: datetime,
        sync: AssetSync | None = None,
    ) -> None:
        """One unordered ``bulk_write``: a ReplaceOne upsert per asset, DeleteMany for removals
        and, with ``sync``, one UpdateMany that records it on every asset of the scope (the
        upserted documents carry it too, so the operations agree in any order).

        Makes no call when there is nothing to write. Unordered lets the server apply the
        operations in parallel; they touch distinct keys, so their order does not matter.
        Raises ValueError (before any I/O) for an upsert outside the scope.
        """
        check_scope(scope, upserts)
        key: dict[str, str] = scope.model_dump()  # provider, account_id, region, asset_type
        mark = None if sync is None else _sync_document(sync)
        operations: list[Any] = [self._upsert(key, asset, now, mark) for asset in upserts]
        if mark is not None:
            operations.append(UpdateMany(key, {"$set": {"last_sync": mark}}))
        ids = list(removals)
        for start in range(0, len(ids), _REMOVALS_PER_OPERATION):
            chunk = ids[start : start + _REMOVALS_PER_OPERATION]
            operations.append(DeleteMany({**key, "asset_id": {"$in": chunk}}))
        if not operations:
            return  # the driver rejects an empty bulk write, and it would be a wasted trip
        async with unavailable_as_domain_error():
            await self._collection.bulk_write(operations, ordered=False)

    def _upsert(
        self, key: dict[str, str], asset: Asset, now: datetime, mark: dict[str, Any] | None
    ) -> Any:
        selector = {**key, "asset_id": asset.asset_id}
        document = _document(key, asset, now)
        if mark is not None:
            document["last_sync"] = mark
        if self._replace_in_bulk:
            return ReplaceOne(selector, document, upsert=True)
        return UpdateMany(selector, {"$set": document}, upsert=True)

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

        ``limit=0`` returns only the total (MongoDB would read 0 as 'no limit').
        ValueError for a negative offset or limit.
        """
        query = asset_criteria(
            offset,
            limit,
            provider=provider,
            account_id=account_id,
            region=region,
            asset_type=asset_type,
        )
        assets: list[Asset] = []
        async with unavailable_as_domain_error():
            total: int = await self._collection.count_documents(query)
            if limit and offset < total:
                cursor = (
                    self._collection.find(query, {"_id": 0})
                    .sort([(f, ASCENDING) for f in ASSET_SORT_FIELDS])
                    .skip(offset)
                    .limit(limit)
                )
                assets = [_asset(document) async for document in cursor]
        return assets, total

    async def search(
        self,
        query: AssetFilter,
        *,
        sort: AssetSort = "region",
        descending: bool = False,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[StoredAsset], int]:
        """A page of the selected assets in ``sort`` order (ties by the asset key, ascending)
        and their total: a count and, when the page is not past the end, one find.
        ValueError for a negative offset or limit."""
        if offset < 0 or limit < 0:
            raise ValueError("offset and limit must be >= 0")
        criteria = _criteria(query)
        order: list[tuple[str, int]] = [(sort, DESCENDING if descending else ASCENDING)]
        order += [(name, ASCENDING) for name in ASSET_KEY_ORDER if name != sort]
        assets: list[StoredAsset] = []
        async with unavailable_as_domain_error():
            total: int = await self._collection.count_documents(criteria)
            if limit and offset < total:
                cursor = (
                    self._collection.find(criteria, {"_id": 0, "fingerprint": 0})
                    .sort(order)
                    .skip(offset)
                    .limit(limit)
                )
                assets = [_stored_asset(document) async for document in cursor]
        return assets, total

    async def summary(self, query: AssetFilter) -> AssetSummary:
        """One aggregation per grouping (provider, account, region, type) and one read of the
        latest sync, all on the selection."""
        criteria = _criteria(query)
        counts: dict[str, tuple[AssetCount, ...]] = {}
        async with unavailable_as_domain_error():
            for label, field in _GROUPINGS:
                rows = await aggregate(
                    self._collection,
                    [
                        {"$match": criteria},
                        {"$group": {"_id": f"${field}", "count": {"$sum": 1}}},
                        {"$sort": {"_id": 1}},
                    ],
                )
                counts[f"by_{label}"] = tuple(
                    AssetCount(value=row["_id"], count=row["count"]) for row in rows
                )
            latest = await self._collection.find_one(
                {**criteria, "last_sync": {"$type": "object"}},
                {"_id": 0, "last_sync": 1},
                sort=[("last_sync.at", DESCENDING), ("last_sync.task_id", DESCENDING)],
            )
        total = sum(count.count for count in counts["by_provider"])
        last = None if latest is None else AssetSync(**latest["last_sync"])
        return AssetSummary(total=total, last_sync=last, **counts)


_GROUPINGS = (
    ("provider", "provider"),
    ("account", "account_id"),
    ("region", "region"),
    ("type", "asset_type"),
)


def _criteria(query: AssetFilter) -> dict[str, Any]:
    """The find filter of ``query``: fixed field names, string values, and the text escaped
    into a literal pattern, so nothing a caller passes can become an operator."""
    criteria: dict[str, Any] = {
        name: str(value)
        for name in ("provider", "account_id", "region", "asset_type")
        if (value := getattr(query, name)) is not None
    }
    if query.project_ids is not None:
        criteria["last_sync.project_id"] = {"$in": sorted(str(p) for p in query.project_ids)}
    if query.text is not None:
        literal = {"$regex": re.escape(str(query.text)), "$options": "i"}
        criteria["$or"] = [{"name": literal}, {"asset_id": literal}]
    return criteria


def _sync_document(sync: AssetSync) -> dict[str, Any]:
    return {"task_id": sync.task_id, "project_id": sync.project_id, "at": sync.at}


def _stored_asset(document: dict[str, Any]) -> StoredAsset:
    fields = {name: document[name] for name in StoredAsset.model_fields if name in document}
    return StoredAsset(**fields)


def _document(key: dict[str, str], asset: Asset, now: datetime) -> dict[str, Any]:
    return {
        **key,
        "asset_id": asset.asset_id,
        "name": asset.name,
        "attributes": asset.attributes,
        "fingerprint": asset.fingerprint(),
        "synced_at": now,
    }


def _asset(document: dict[str, Any]) -> Asset:
    return Asset(**{field: document[field] for field in Asset.model_fields if field in document})
