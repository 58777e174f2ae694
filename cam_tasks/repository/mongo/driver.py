"""The one place driver errors are translated, and the few calls where PyMongo's async API and
Motor (or mongomock-motor) differ.

The repositories accept any of: ``pymongo.AsyncMongoClient`` databases (the default), Motor
databases and mongomock-motor databases. Their collection APIs agree except that PyMongo's async
``aggregate`` is a coroutine returning a cursor while Motor's returns the cursor directly.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from pymongo import WriteConcern
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
)

from cam_tasks.domain import DatabaseUnavailableError

__all__ = [
    "UNAVAILABLE_ERRORS",
    "aggregate",
    "durable_collection",
    "is_mongomock",
    "unavailable_as_domain_error",
]

logger = logging.getLogger(__name__)

#: Driver errors that mean "the database cannot be reached now" rather than "your query is bad".
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    AutoReconnect,
    ConnectionFailure,
    ExecutionTimeout,
    NetworkTimeout,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
)


@asynccontextmanager
async def unavailable_as_domain_error() -> AsyncIterator[None]:
    """Translate connectivity failures into :class:`DatabaseUnavailableError` (once, here)."""
    try:
        yield
    except UNAVAILABLE_ERRORS as exc:
        raise DatabaseUnavailableError(f"database unavailable: {type(exc).__name__}") from exc


async def aggregate(collection: Any, pipeline: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run ``pipeline`` and return every document, on PyMongo async and Motor alike."""
    cursor = collection.aggregate(list(pipeline))
    if inspect.isawaitable(cursor):
        cursor = await cursor
    documents: list[dict[str, Any]] = await cursor.to_list(None)
    return documents


async def durable_collection(database: Any, name: str) -> Any:
    """The collection ``name``, writing with ``w="majority"`` on a replica set (or through
    mongos), so an acknowledged write survives a failover; as configured elsewhere (a
    standalone server, mongomock)."""
    try:
        async with unavailable_as_domain_error():
            reply: dict[str, Any] = await database.command("hello")
    except (OperationFailure, NotImplementedError):
        reply = {}  # a server (or mongomock) without `hello`: a standalone for our purpose
    if "setName" in reply or reply.get("msg") == "isdbgrid":
        logger.info("%s are written with w=majority", name, extra={"collection": name})
        return database.get_collection(name, write_concern=WriteConcern("majority"))
    return database.get_collection(name)


def is_mongomock(collection: Any) -> bool:
    """Whether ``collection`` is mongomock-motor's, whose bulk writes refuse the operations of
    current PyMongo (their ``sort`` argument: mongomock/mongomock#912)."""
    # mongomock-motor's classes pose as Motor's (even their __module__); their MRO does not.
    return any(cls.__module__.startswith("mongomock") for cls in type(collection).__mro__)
