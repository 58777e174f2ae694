"""Task statistics computed where the tasks are: MongoDB aggregations, never loading tasks.

:class:`MongoTaskStats` is the ``stats`` part of the Mongo task repository (a mixin over its
``_collection`` and ``_server_percentile``), kept apart because it is a concept of its own: the
aggregation pipelines and the ``$percentile`` fallback.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime
from typing import Any

from pymongo.errors import OperationFailure

from cam_tasks.domain import TaskStatus, to_millis
from cam_tasks.domain.stats import (
    PERCENTILES,
    DurationStats,
    TaskStats,
    TypeStats,
    check_window,
    rank_of,
)
from cam_tasks.repository.mongo import driver
from cam_tasks.repository.mongo.queries import one_of

__all__ = ["MongoTaskStats"]

logger = logging.getLogger(__name__)

# A completed task's duration in milliseconds (BSON dates subtract to milliseconds).
_DURATION_MS = {"$subtract": ["$completed_at", "$started_at"]}


class MongoTaskStats:
    """``TaskRepository.stats`` over a tasks collection.

    ``_server_percentile``: whether ``$percentile`` may be used (MongoDB >= 7.0); None finds out
    on first use.
    """

    _collection: Any
    _server_percentile: bool | None

    async def stats(
        self,
        *,
        since: datetime,
        until: datetime,
        types: Collection[str] | None = None,
        project_ids: Collection[str] | None = None,
    ) -> TaskStats:
        """Two aggregations over the window (served by the ``list_all``/``list_type`` indexes):
        counts grouped by (type, status), and per type over the completed tasks their count,
        mean duration and, where the server has ``$percentile`` (MongoDB >= 7.0, SecantusDB),
        p50/p95 in the same ``$group``. Elsewhere (older servers, mongomock) each percentile is
        one more aggregation per type that sorts that type's durations in the server and returns
        only the value at the nearest rank (``$sort``, ``$skip``, ``$limit: 1``). Either way no
        duration but the answers leaves the server. ValueError unless since < until.
        """
        check_window(since, until)
        window: dict[str, Any] = {"created_at": {"$gte": to_millis(since), "$lt": to_millis(until)}}
        if types is not None:
            window["type"] = one_of(types) if types else {"$in": []}
        if project_ids is not None:
            window["project_id"] = {"$in": sorted(project_ids)}
        counted = [
            {"$match": window},
            {"$group": {"_id": {"type": "$type", "status": "$status"}, "count": {"$sum": 1}}},
        ]
        completed = {**window, "status": TaskStatus.COMPLETED.value, "started_at": {"$ne": None}}
        async with driver.unavailable_as_domain_error():
            groups = await driver.aggregate(self._collection, counted)
            durations = await self._durations(completed)
        counts: dict[str, dict[TaskStatus, int]] = {}
        for group in groups:
            status = group["_id"].get("status")
            if status in TaskStatus.__members__.values():
                per_type = counts.setdefault(group["_id"]["type"], dict.fromkeys(TaskStatus, 0))
                per_type[TaskStatus(status)] = int(group["count"])
        entries = tuple(
            TypeStats(task_type, counts[task_type], durations.get(task_type))
            for task_type in sorted(counts)
        )
        return TaskStats(since=since, until=until, types=entries)

    async def _durations(self, completed: dict[str, Any]) -> dict[str, DurationStats]:
        group: dict[str, Any] = {
            "_id": "$type",
            "count": {"$sum": 1},
            "avg_ms": {"$avg": "$duration_ms"},
        }
        if self._server_percentile is not False:
            group["percentiles_ms"] = {
                "$percentile": {
                    "input": "$duration_ms",
                    "p": list(PERCENTILES),
                    "method": "approximate",
                }
            }
        pipeline = [
            {"$match": completed},
            {"$project": {"type": True, "duration_ms": _DURATION_MS}},
            {"$group": group},
        ]
        try:
            groups = await driver.aggregate(self._collection, pipeline)
        except driver.UNAVAILABLE_ERRORS:
            raise  # some are OperationFailures too (ExecutionTimeout): not a missing operator
        except (OperationFailure, NotImplementedError):
            if self._server_percentile is not None:
                raise
            # MongoDB < 7.0 answers "unknown group operator", mongomock NotImplementedError.
            logger.info("the server has no $percentile: percentiles use one sort per type")
            self._server_percentile = False
            return await self._durations(completed)
        if self._server_percentile is None:
            self._server_percentile = True
        stats: dict[str, DurationStats] = {}
        for found in groups:
            count, avg_ms = int(found["count"]), float(found["avg_ms"])
            percentiles = found.get("percentiles_ms")
            if percentiles is None:
                percentiles = [
                    await self._duration_at_rank(completed, found["_id"], rank_of(count, p), avg_ms)
                    for p in PERCENTILES
                ]
            p50, p95 = (float(value) / 1000 for value in percentiles)
            stats[found["_id"]] = DurationStats(
                count=count, avg_s=avg_ms / 1000, p50_s=p50, p95_s=p95
            )
        return stats

    async def _duration_at_rank(
        self, completed: dict[str, Any], task_type: str, rank: int, default_ms: float
    ) -> float:
        """The ``rank``-th shortest duration (1-based) of ``task_type``'s completed tasks."""
        pipeline: list[dict[str, Any]] = [
            {"$match": {**completed, "type": task_type}},
            {"$project": {"duration_ms": _DURATION_MS}},
            {"$sort": {"duration_ms": 1, "_id": 1}},
            {"$skip": rank - 1},
            {"$limit": 1},
        ]
        found = await driver.aggregate(self._collection, pipeline)
        # Empty only when tasks of the window were deleted since they were counted.
        return float(found[0]["duration_ms"]) if found else default_ms
