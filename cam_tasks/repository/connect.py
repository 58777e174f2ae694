"""What a store URI opens: the task repository, asset inventory and schedule store of one
backend.

======================  ====================================================================
``memory://``           MemoryTaskRepository + MemoryAssetInventory + MemoryScheduleRepository
                        + MemoryQueueRepository, in this process
``mongomock://[/db]``   the Mongo repositories on mongomock-motor (in process; needs the
                        ``mongomock-motor`` package)
``mongodb://…``         the Mongo repositories on ``pymongo.AsyncMongoClient``; the database
``mongodb+srv://…``     is the URI's path when it names one, else ``database``
======================  ====================================================================

Nothing here touches the network or creates indexes: callers run ``initialize()`` on the stores
(at start-up), so that opening is cheap and failures surface where they are handled.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from pymongo import AsyncMongoClient
from pymongo.errors import ConfigurationError as DriverConfigurationError

from cam_tasks.domain import Clock, ConfigurationError, SystemClock
from cam_tasks.repository.memory import (
    MemoryAssetInventory,
    MemoryKeySlotRepository,
    MemoryQueueRepository,
    MemoryScheduleRepository,
    MemoryTaskRepository,
)
from cam_tasks.repository.mongo import (
    MongoAssetInventory,
    MongoKeySlotRepository,
    MongoQueueRepository,
    MongoScheduleRepository,
    MongoTaskRepository,
)
from cam_tasks.repository.protocol import (
    AssetInventory,
    KeySlotRepository,
    QueueRepository,
    ScheduleRepository,
    TaskRepository,
)

__all__ = ["SCHEMES", "Stores", "open_stores", "stores_for_database"]


@dataclass(frozen=True)
class Stores:
    """The stores of one backend. ``close()`` is idempotent and closes the client it created
    (never a database handle the host service passed in)."""

    tasks: TaskRepository
    inventory: AssetInventory
    backend: str  # "memory" | "mongomock" | "mongodb"
    close: Callable[[], Awaitable[None]]
    schedules: ScheduleRepository
    slots: KeySlotRepository
    queues: QueueRepository


def _closer(tasks: TaskRepository, client: Any = None) -> Callable[[], Awaitable[None]]:
    closed = False

    async def close() -> None:
        nonlocal closed
        if closed:
            return
        closed = True
        await tasks.close()
        if client is not None:
            outcome = client.close()  # a coroutine on PyMongo async, a plain call on mongomock
            if inspect.isawaitable(outcome):
                await outcome

    return close


def _mongo_stores(database: Any, backend: str, retention_s: float | None, client: Any) -> Stores:
    tasks = MongoTaskRepository(database, retention_s=retention_s)
    return Stores(
        tasks,
        MongoAssetInventory(database),
        backend,
        _closer(tasks, client),
        schedules=MongoScheduleRepository(database),
        slots=MongoKeySlotRepository(database),
        queues=MongoQueueRepository(database),
    )


def stores_for_database(database: Any, *, retention_s: float | None = None) -> Stores:
    """The Mongo stores on a database handle the host service already has (PyMongo async or
    Motor). Closing the stores leaves the handle and its client open."""
    # mongomock-motor classes pose as Motor's (even their __module__), but not their bases.
    in_process = any(c.__module__.startswith("mongomock") for c in type(database).__mro__)
    backend = "mongomock" if in_process else "mongodb"
    return _mongo_stores(database, backend, retention_s, client=None)


@dataclass(frozen=True, slots=True)
class _Options:
    """What :func:`open_stores` was told beside the URI."""

    database: str
    retention_s: float | None
    server_selection_timeout_s: float
    operation_timeout_s: float | None
    clock: Clock | None


def _open_memory(uri: str, options: _Options) -> Stores:
    # The memory store prunes expired tasks itself, so it must judge time by the same clock as
    # everything else (a database's TTL monitor uses the server's).
    tasks = MemoryTaskRepository(
        retention_s=options.retention_s, clock=options.clock or SystemClock()
    )
    return Stores(
        tasks,
        MemoryAssetInventory(),
        "memory",
        _closer(tasks),
        schedules=MemoryScheduleRepository(),
        slots=MemoryKeySlotRepository(),
        queues=MemoryQueueRepository(),
    )


def _open_mongomock(uri: str, options: _Options) -> Stores:
    try:
        from mongomock_motor import AsyncMongoMockClient
    except ImportError as exc:
        raise ConfigurationError(
            "mongomock:// needs the mongomock-motor package (pip install mongomock-motor)"
        ) from exc
    client: Any = AsyncMongoMockClient(tz_aware=True)
    name = urlsplit(uri).path.strip("/") or options.database
    return _mongo_stores(client[name], "mongomock", options.retention_s, client)


def _open_mongodb(uri: str, options: _Options) -> Stores:
    try:
        client_options: dict[str, Any] = {
            "tz_aware": True,
            "serverSelectionTimeoutMS": max(1, round(options.server_selection_timeout_s * 1000)),
        }
        # A bound on every read from a server: without it, a server that accepts connections
        # but stops answering hangs every request. Not the driver's timeoutMS: under timeoutMS
        # PyMongo ignores serverSelectionTimeoutMS, so refused connections would answer only
        # after the operation timeout. A timeoutMS or socketTimeoutMS in the URI wins.
        named = {name.lower() for name in parse_qs(urlsplit(uri).query)}
        if options.operation_timeout_s is not None and not named & {
            "timeoutms",
            "sockettimeoutms",
        }:
            client_options["socketTimeoutMS"] = max(1, round(options.operation_timeout_s * 1000))
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, **client_options)
    except DriverConfigurationError as exc:  # InvalidURI is one; never echo the URI
        scheme = uri.partition("://")[0].lower()
        raise ConfigurationError(f"invalid {scheme}:// URI: {exc}") from exc
    handle = client.get_default_database(default=options.database)
    return _mongo_stores(handle, "mongodb", options.retention_s, client)


#: Every store URI scheme and what opens it: the one place that names the backends.
_OPENERS: Final[dict[str, Callable[[str, _Options], Stores]]] = {
    "memory": _open_memory,
    "mongomock": _open_mongomock,
    "mongodb": _open_mongodb,
    "mongodb+srv": _open_mongodb,
}
#: The URI schemes :func:`open_stores` accepts.
SCHEMES: Final = tuple(_OPENERS)


def open_stores(
    uri: str,
    *,
    database: str = "cam_tasks",
    retention_s: float | None = None,
    server_selection_timeout_s: float = 5.0,
    operation_timeout_s: float | None = None,
    clock: Clock | None = None,
) -> Stores:
    """Open the stores ``uri`` names (see the module docstring); ConfigurationError for any
    other scheme, a malformed URI, or mongomock:// without mongomock-motor installed.

    Does not connect: PyMongo connects in the background and the first operation waits up to
    ``server_selection_timeout_s`` for a server (then DatabaseUnavailableError); once sent, it
    waits up to ``operation_timeout_s`` for each reply from the server (then the same). A
    ``timeoutMS`` in a mongodb:// URI replaces both (the driver's own rule).
    """
    scheme = uri.partition("://")[0].lower() if "://" in uri else ""
    opener = _OPENERS.get(scheme)
    if opener is None:
        raise ConfigurationError(
            f"unsupported store URI scheme {scheme!r}: use one of "
            + ", ".join(f"{s}://" for s in SCHEMES)
        )
    options = _Options(
        database, retention_s, server_selection_timeout_s, operation_timeout_s, clock
    )
    return opener(uri, options)
