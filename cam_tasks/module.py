"""The composition root: builds every part from :class:`Settings` and owns start and stop.

Two ways in:

- ``cam_tasks.setup(app, settings, executors=[...], providers=[...])`` mounts the HTTP API into
  an existing aiohttp application and ties the runtime's start/stop to the app's
  ``cleanup_ctx``;
- ``async with CamTasks(settings) as cam:`` for a process without aiohttp (a worker-only
  instance, a script, a test), using ``cam.service`` directly.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from cam_tasks.assets import AssetProvider, ProviderRegistry, StaticAssetProvider
from cam_tasks.config import Settings, StaticProviderSettings
from cam_tasks.domain import Clock, ConfigurationError, RetryPolicy, SystemClock
from cam_tasks.executor import ExecutorRegistry, TaskExecutor
from cam_tasks.executor.discover_assets import DiscoverAssetsExecutor
from cam_tasks.executor.sync_assets import SyncAssetsExecutor
from cam_tasks.plugins import EXECUTOR_GROUP, PROVIDER_GROUP, PluginContext
from cam_tasks.plugins import load as load_plugins_of
from cam_tasks.queue import Dispatcher
from cam_tasks.repository import (
    ObservedTaskRepository,
    Stores,
    open_stores,
    stores_for_database,
)
from cam_tasks.service import TaskService
from cam_tasks.web import create_api

__all__ = ["CAM_TASKS_KEY", "CamTasks", "setup"]

logger = logging.getLogger(__name__)

_BUILTIN_DATA = Path(__file__).parent / "data"


class CamTasks:
    """Everything one process needs: stores, registries, dispatcher, service, API.

    Construction does no I/O; :meth:`start` creates indexes and starts the dispatcher;
    :meth:`close` stops gracefully (see :class:`Dispatcher`) and is idempotent.

    ``database``: a database handle the host service already has (PyMongo async or Motor); when
    given, ``settings.mongo.uri`` is not used and the handle is not closed here.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        executors: Iterable[TaskExecutor] = (),
        providers: Iterable[AssetProvider] = (),
        database: Any = None,
        clock: Clock | None = None,
        load_plugins: bool = True,
    ) -> None:
        self.settings = settings or Settings()
        self.clock = clock or SystemClock()
        retention_s = self.settings.tasks.retention_s
        self.stores: Stores = (
            stores_for_database(database, retention_s=retention_s)
            if database is not None
            else open_stores(
                self.settings.mongo.uri,
                database=self.settings.mongo.database,
                retention_s=retention_s,
                server_selection_timeout_s=self.settings.mongo.server_selection_timeout_s,
            )
        )
        #: Every task write of this process goes through here, so listeners (long polls,
        #: server-sent events, metrics) hear of it at once.
        self.tasks = ObservedTaskRepository(self.stores.tasks)
        self.providers = ProviderRegistry()
        for provider_settings in self.settings.providers.static:
            self.providers.register(self._static_provider(provider_settings))
        plugins = PluginContext(self.settings, self.providers, self.stores.inventory, self.clock)
        if load_plugins:  # installed packages' entry points (cam_tasks.providers)
            providers = [*load_plugins_of(PROVIDER_GROUP, plugins), *providers]
        for provider in providers:
            self.providers.register(provider)
        self.registry = ExecutorRegistry(
            [
                SyncAssetsExecutor(self.providers, self.stores.inventory, self.clock),
                DiscoverAssetsExecutor(self.providers, self.stores.inventory, self.clock),
            ]
        )
        if load_plugins:  # installed packages' entry points (cam_tasks.executors)
            executors = [*load_plugins_of(EXECUTOR_GROUP, plugins), *executors]
        for executor in executors:
            self.registry.register(executor)
        queue, retry = self.settings.queue, self.settings.retry
        self.dispatcher = Dispatcher(
            self.tasks,
            self.registry,
            clock=self.clock,
            worker_count=queue.worker_count,
            buffer_size=queue.buffer_size,
            lease_s=queue.lease_s,
            heartbeat_interval_s=queue.heartbeat_interval_s,
            progress_interval_s=queue.progress_interval_s,
            rescue_interval_s=queue.rescue_interval_s,
            poll_interval_s=queue.poll_interval_s,
            shutdown_timeout_s=queue.shutdown_timeout_s,
            retry_policy=RetryPolicy(
                base_s=retry.backoff_base_s, max_s=retry.backoff_max_s, jitter=retry.jitter
            ),
        )
        self.service = TaskService(
            self.tasks,
            self.registry,
            clock=self.clock,
            notifier=self.dispatcher,
            max_pending=self.settings.tasks.max_pending,
        )
        self._started = False
        self._closed = False

    def _static_provider(self, provider: StaticProviderSettings) -> StaticAssetProvider:
        if provider.inventory.startswith("builtin:"):
            path = _BUILTIN_DATA / provider.inventory.removeprefix("builtin:")
        else:
            path = self.settings.base_dir / provider.inventory
        if not path.is_file():
            raise ConfigurationError(
                f"provider {provider.name!r}: inventory file {path} does not exist"
            )
        return StaticAssetProvider(provider.name, path, latency_s=provider.latency_s)

    def create_api(self) -> web.Application:
        """A new aiohttp application serving the HTTP API, to mount under the API prefix."""
        return create_api(self.service, max_body_bytes=self.settings.api.max_body_bytes)

    async def start(self) -> None:
        """Create indexes, then start the dispatcher. Idempotent."""
        if self._started:
            return
        self._started = True
        await self.tasks.initialize()
        await self.stores.inventory.initialize()
        await self.dispatcher.start()
        logger.info("cam_tasks started", extra={"backend": self.stores.backend})

    async def close(self) -> None:
        """Graceful stop, then close what this runtime opened. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.dispatcher.close()
        finally:
            await self.stores.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


CAM_TASKS_KEY = web.AppKey("cam_tasks", CamTasks)


def setup(
    app: web.Application,
    settings: Settings | None = None,
    *,
    executors: Iterable[TaskExecutor] = (),
    providers: Iterable[AssetProvider] = (),
    database: Any = None,
    clock: Clock | None = None,
) -> CamTasks:
    """Mount cam_tasks into ``app``: the API under ``settings.api.prefix``, the runtime started
    and stopped with the app. Returns the runtime (also at ``app[CAM_TASKS_KEY]``)."""
    runtime = CamTasks(
        settings, executors=executors, providers=providers, database=database, clock=clock
    )
    app[CAM_TASKS_KEY] = runtime
    app.add_subapp(runtime.settings.api.prefix, runtime.create_api())

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        await runtime.start()
        yield
        await runtime.close()

    app.cleanup_ctx.append(lifecycle)
    return runtime
