"""The composition root: builds every part from :class:`Settings` and owns start and stop.

Two ways in:

- ``cam_tasks.setup(app, settings, executors=[...], providers=[...])`` mounts the HTTP API into
  an existing aiohttp application and ties the runtime's start/stop to the app's
  ``cleanup_ctx``;
- ``async with CamTasks(settings) as cam:`` for a process without aiohttp (a worker-only
  instance, a script, a test), using ``cam.service`` directly.

Process roles (docs/queues.md): with workers (the default) a runtime runs the dispatcher and the
scheduler; with ``workers=False`` (``[server] workers = false``, ``serve --no-workers``) it only
validates and stores submits, and worker processes on the same database run them.

The API is never mounted open by accident: it needs an authenticator, which is the host's
``authenticate=`` hook, else bearer tokens from ``[auth] tokens``, else anonymous access only
when ``[auth] allow_anonymous = true`` says so (logged); otherwise ConfigurationError.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from cam_tasks.assets import AssetProvider, ProviderRegistry, StaticAssetProvider
from cam_tasks.config import (
    BUILTIN_EXECUTORS,
    AliyunProviderSettings,
    AuthSettings,
    AwsProviderSettings,
    Settings,
    StaticProviderSettings,
)
from cam_tasks.domain import (
    ANONYMOUS,
    DEFAULT_QUEUE,
    Clock,
    ConfigurationError,
    DatabaseUnavailableError,
    InvalidParamsError,
    KeyLimits,
    Principal,
    RetryPolicy,
    Role,
    SystemClock,
    UnknownTaskTypeError,
)
from cam_tasks.domain.lifecycle import Startable
from cam_tasks.executor import ExecutorRegistry, TaskExecutor
from cam_tasks.executor.discover_assets import DiscoverAssetsExecutor
from cam_tasks.executor.sync_assets import SyncAssetsExecutor
from cam_tasks.metrics import TaskMetrics
from cam_tasks.plugins import (
    EXECUTOR_GROUP,
    PROVIDER_GROUP,
    ExecutorFactory,
    PluginContext,
    SharedHttpSession,
    build,
)
from cam_tasks.plugins import load as load_plugins_of
from cam_tasks.queue import Dispatcher, Scheduler
from cam_tasks.repository import (
    ObservedTaskRepository,
    Stores,
    open_stores,
    stores_for_database,
)
from cam_tasks.service import (
    AssetService,
    QueueService,
    ScheduleService,
    TaskService,
    TaskWatcher,
)
from cam_tasks.service.stats import StatsService
from cam_tasks.tracing import OpenTelemetryTaskTracer, TaskTracer
from cam_tasks.web import (
    ApiLimits,
    Authenticate,
    BearerTokenAuthenticator,
    ReadinessCheck,
    allow_anonymous,
    create_api,
    health_routes,
    metrics_routes,
)
from cam_tasks.web.dashboard import DEFAULT_DASHBOARD_PREFIX, create_dashboard

__all__ = ["CAM_TASKS_KEY", "CamTasks", "build_authenticator", "setup"]

logger = logging.getLogger(__name__)

_BUILTIN_DATA = Path(__file__).parent / "data"


def _aws_provider(settings: AwsProviderSettings) -> AssetProvider:
    # Imported here: aiobotocore is the optional extra cam_tasks[aws].
    try:
        from cam_tasks.assets.aws import AwsAssetProvider
    except ImportError as exc:
        raise ConfigurationError(
            f"provider {settings.name!r} needs the AWS extra: pip install 'cam_tasks[aws]' "
            f"({exc.name} is missing)"
        ) from None
    return AwsAssetProvider(
        settings.name,
        regions=settings.regions,
        endpoint_url=settings.endpoint_url,
        profile=settings.profile,
        role_arn=settings.role_arn,
        max_attempts=settings.max_attempts,
    )


def _aliyun_provider(settings: AliyunProviderSettings) -> AssetProvider:
    # Imported here: the Alibaba Cloud SDKs are the optional extra cam_tasks[aliyun].
    try:
        from cam_tasks.assets.aliyun import AliyunAssetProvider, env_credentials
    except ImportError as exc:
        raise ConfigurationError(
            f"provider {settings.name!r} needs the Alibaba Cloud extra: "
            f"pip install 'cam_tasks[aliyun]' ({exc.name} is missing)"
        ) from None
    credentials = None
    if settings.access_key_id_env and settings.access_key_secret_env:
        credentials = env_credentials(
            settings.access_key_id_env,
            settings.access_key_secret_env,
            settings.security_token_env,
        )
    return AliyunAssetProvider(
        settings.name,
        regions=settings.regions,
        endpoint=settings.endpoint,
        credentials=credentials,
        max_attempts=settings.max_attempts,
    )


def _served_queues(declared: Mapping[str, int], selected: Iterable[str] | None) -> dict[str, int]:
    """The queues a process with workers serves and its concurrency in each: every declared
    queue (the default included), or only those ``[worker] queues`` selects.

    Raises ConfigurationError naming any selected queue that is not declared."""
    if selected is None:
        return dict(declared)
    selected = list(selected)
    unknown = sorted({name for name in selected if name not in declared})
    if unknown:
        raise ConfigurationError(
            f"queues {', '.join(map(repr, unknown))} are not declared "
            f"(declared: {', '.join(sorted(declared))}); declare them as [queues.NAME]"
        )
    return {name: declared[name] for name in dict.fromkeys(selected)}


def _builtin_executors(
    names: Iterable[str], providers: ProviderRegistry, stores: Stores, clock: Clock
) -> list[TaskExecutor]:
    """The built-in executors ``names`` selects (``[executors] builtin``), each once."""
    built: list[TaskExecutor] = []
    for name in dict.fromkeys(names):
        if name == "sync_assets":
            built.append(SyncAssetsExecutor(providers, stores.inventory, clock))
        elif name == "discover_assets":
            built.append(DiscoverAssetsExecutor(providers, stores.inventory, clock))
        else:  # the settings model allows only the names above
            raise ConfigurationError(f"no built-in executor {name!r}")
    return built


def build_authenticator(
    auth: AuthSettings, authenticate: Authenticate | None = None
) -> Authenticate:
    """The API's authenticator: the host's ``authenticate`` when given; else the bearer tokens
    of ``auth`` (letting requests without a token in as ``anonymous`` when allowed); else
    anonymous access when ``allow_anonymous``; else ConfigurationError. Logs a warning whenever
    requests without credentials are accepted."""
    if authenticate is not None:
        return authenticate
    try:
        principals = {
            name: Principal(name=name, projects=tuple(token.projects), role=Role(token.role))
            for name, token in auth.tokens.items()
        }
    except ValueError as exc:
        raise ConfigurationError(f"invalid [auth] tokens: {exc}") from None
    if not principals and not auth.allow_anonymous:
        raise ConfigurationError(
            "the HTTP API has no authenticator: pass setup(authenticate=...), configure "
            "[auth] tokens, or set [auth] allow_anonymous = true (a trusted network only)"
        )
    if auth.allow_anonymous:
        logger.warning(
            "the HTTP API accepts requests without credentials ([auth] allow_anonymous = "
            "true): they act as the admin 'anonymous'"
        )
    if not principals:
        return allow_anonymous()
    plain = {
        token.token.get_secret_value(): principals[name]
        for name, token in auth.tokens.items()
        if token.token is not None
    }
    digests = {
        token.token_sha256: principals[name]
        for name, token in auth.tokens.items()
        if token.token_sha256 is not None
    }
    try:
        return BearerTokenAuthenticator(
            plain,
            token_sha256=digests,
            anonymous=ANONYMOUS if auth.allow_anonymous else None,
        )
    except ValueError as exc:
        raise ConfigurationError(f"invalid [auth] tokens: {exc}") from None


#: URI schemes of stores that live in this process: nothing survives a restart, no other
#: instance sees their tasks. ``[mongo] allow_memory = false`` refuses them.
_IN_PROCESS_SCHEMES = ("memory", "mongomock")


def _check_store_allowed(settings: Settings) -> None:
    """ConfigurationError when ``[mongo] allow_memory = false`` and the URI is in process."""
    scheme = settings.mongo.uri.partition("://")[0].lower()
    if scheme in _IN_PROCESS_SCHEMES and not settings.mongo.allow_memory:
        raise ConfigurationError(
            f"[mongo] uri is {scheme}://, an in-process store: every task would be lost on a "
            "restart and no other instance would see it, and [mongo] allow_memory = false "
            "refuses that. Point CAM_TASKS_MONGO__URI at MongoDB (mongodb://…, a replica set "
            "in production), or set CAM_TASKS_MONGO__ALLOW_MEMORY=true to run in memory anyway"
        )


def build_tracer(settings: Settings, tracer_provider: Any = None) -> TaskTracer:
    """The tracer ``[tracing]`` asks for: OpenTelemetry spans through ``tracer_provider`` (else
    the global provider) when enabled, else one that records nothing. ConfigurationError when
    enabled without OpenTelemetry installed."""
    if not settings.tracing.enabled:
        return TaskTracer()
    return OpenTelemetryTaskTracer(tracer_provider)


def declared_queues(settings: Settings, registry: ExecutorRegistry) -> dict[str, int]:
    """Queue name -> concurrency of every queue this deployment knows: the settings'
    ``[queues.NAME]`` and the default queue (:meth:`Settings.queue_concurrency`), plus the
    ``queue`` an executor class declares (none: the default queue), which gets the default
    queue's concurrency unless the settings give it one."""
    declared = settings.queue_concurrency()
    for spec in registry:
        declared.setdefault(spec.queue, declared[DEFAULT_QUEUE])
    return declared


class CamTasks(Startable):
    """Everything one process needs: stores, registries, dispatcher, service, API.

    Construction does no I/O; :meth:`start` creates indexes and starts the dispatcher and the
    scheduler; :meth:`close` stops gracefully (see :class:`Dispatcher`) and is idempotent.

    ``workers``: whether this process runs tasks (default ``settings.server.workers``). When
    False it is API only: :meth:`start` starts neither dispatcher nor scheduler, submits are
    validated by the executors' params models and stored, nobody in this process is woken,
    and readiness does not ask for a running dispatcher.

    ``database``: a database handle the host service already has (PyMongo async or Motor); when
    given, ``settings.mongo.uri`` is not used and the handle is not closed here.

    ``executors``: instances, or factories called with the runtime's :class:`PluginContext`
    (settings, providers, inventory, clock, shared HTTP session) or with nothing
    (:func:`cam_tasks.plugins.build`). Each is checked as it is registered: ConfigurationError
    names the executor and what is wrong with it (docs/executors.md lists them).

    ``tracer_provider``: an OpenTelemetry tracer provider for the spans of ``[tracing]``
    (default: the global one); ignored while tracing is off.

    Raises ConfigurationError for settings it cannot run with, among them an in-process store
    (``memory://``) while ``[mongo] allow_memory`` is false.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        executors: Iterable[TaskExecutor | ExecutorFactory] = (),
        providers: Iterable[AssetProvider] = (),
        database: Any = None,
        clock: Clock | None = None,
        load_plugins: bool = True,
        queues: Mapping[str, int] | None = None,
        workers: bool | None = None,
        tracer_provider: Any = None,
    ) -> None:
        self.settings = settings or Settings()
        if database is None:
            _check_store_allowed(self.settings)
        #: Spans of submit, claim and execution (:mod:`cam_tasks.tracing`), when enabled.
        self.tracer = build_tracer(self.settings, tracer_provider)
        #: True: this process claims and runs tasks and fires schedules; False: API only.
        self.workers: bool = self.settings.server.workers if workers is None else workers
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
                operation_timeout_s=self.settings.mongo.operation_timeout_s,
                clock=self.clock,
            )
        )
        #: Every task write of this process goes through here, so listeners (long polls,
        #: server-sent events, metrics) hear of it at once.
        self.tasks = ObservedTaskRepository(self.stores.tasks)
        #: Long polls and event streams wait here: woken at once by this process's writes, and
        #: reading watched tasks every poll interval to see other instances' writes.
        self.watcher = TaskWatcher(self.tasks, poll_interval_s=self.settings.queue.poll_interval_s)
        self.tasks.add_listener(self.watcher.on_change)
        self.providers = ProviderRegistry()
        for provider_settings in self.settings.providers.static:
            self.providers.register(self._static_provider(provider_settings))
        for aws in self.settings.providers.aws:
            self.providers.register(_aws_provider(aws))
        for aliyun in self.settings.providers.aliyun:
            self.providers.register(_aliyun_provider(aliyun))
        #: One HTTP client session for every executor and provider (``PluginContext.http``).
        self.http = SharedHttpSession()
        plugins = PluginContext(
            self.settings, self.providers, self.stores.inventory, self.clock, self.http
        )
        if load_plugins:  # installed packages' entry points (cam_tasks.providers)
            providers = [*load_plugins_of(PROVIDER_GROUP, plugins), *providers]
        for provider in providers:
            self.providers.register(provider)
        # Only the built-ins [executors] builtin names: a process may run exactly one type.
        self.registry = ExecutorRegistry(
            _builtin_executors(
                self.settings.executors.builtin, self.providers, self.stores, self.clock
            )
        )
        if load_plugins:  # installed packages' entry points (cam_tasks.executors)
            executors = [*load_plugins_of(EXECUTOR_GROUP, plugins), *executors]
        for executor in executors:
            self.registry.register(build(executor, plugins, what="an executor given to cam_tasks"))
        #: Prometheus metrics of this runtime, in a registry of its own (``metrics.registry``).
        #: Every declared queue and its concurrency: :func:`declared_queues`, and the ones given
        #: here (``queues``, which win).
        self.queues: dict[str, int] = {
            **declared_queues(self.settings, self.registry),
            **(queues or {}),
        }
        self.metrics = TaskMetrics(
            self.tasks,
            types=self.registry.types,
            queues=self.queues,
            store_timeout_s=self.settings.monitoring.ready_timeout_s,
        )
        self.tasks.add_listener(self.metrics.task_changed)
        #: Queue name -> worker slots of this process ([worker] queues selects; validated even
        #: API only, so a misnamed queue fails at start-up whatever the role).
        self.served_queues: dict[str, int] = _served_queues(
            self.queues, self.settings.worker.queues
        )
        #: The limit of each concurrency key: the executors' patterns, then the settings'.
        self.key_limits = KeyLimits(
            {
                **{p: n for spec in self.registry for p, n in spec.concurrency_limits.items()},
                **self.settings.concurrency_limits,
            }
        )
        queue, retry = self.settings.queue, self.settings.retry
        self.dispatcher = Dispatcher(
            self.tasks,
            self.registry,
            clock=self.clock,
            queues=self.served_queues,
            paused=self.stores.queues.paused,
            key_slots=self.stores.slots if self.key_limits else None,
            key_limit=self.key_limits if self.key_limits else None,
            lease_s=queue.lease_s,
            heartbeat_interval_s=queue.heartbeat_interval_s,
            progress_interval_s=queue.progress_interval_s,
            rescue_interval_s=queue.rescue_interval_s,
            poll_interval_s=queue.poll_interval_s,
            shutdown_timeout_s=queue.shutdown_timeout_s,
            fair_claim_every=queue.fair_claim_every,
            retry_policy=RetryPolicy(
                base_s=retry.backoff_base_s, max_s=retry.backoff_max_s, jitter=retry.jitter
            ),
            observer=self.metrics,
            tracer=self.tracer,
        )
        self.metrics.watch_dispatcher(self.dispatcher.stats)
        self.service = TaskService(
            self.tasks,
            self.registry,
            clock=self.clock,
            # API only: no dispatcher here to wake; worker processes find the task by polling.
            notifier=self.dispatcher if self.workers else None,
            max_pending=self.settings.tasks.max_pending,
            max_pending_per_principal=self.settings.limits.max_pending_per_principal,
            queues=self.queues,
            tracer=self.tracer,
        )
        #: Task statistics and queue counts (``/tasks/stats``, ``/queue/stats``).
        self.stats = StatsService(self.tasks, clock=self.clock)
        self.tasks.add_listener(self.stats.throughput)
        scheduler = self.settings.scheduler
        #: Fires due schedules through ``service.submit`` (exactly one task per fire time).
        self.scheduler = Scheduler(
            self.stores.schedules,
            self.service.submit,
            registry=self.registry,
            clock=self.clock,
            poll_interval_s=scheduler.poll_interval_s,
            misfire=scheduler.misfire,
            misfire_grace_s=scheduler.misfire_grace_s,
        )
        #: The queues: declared ones with their concurrency, pause/resume (``/queues``).
        self.queue_service = QueueService(
            self.tasks,
            self.stores.queues,
            declared=self.queues,
            clock=self.clock,
            notifier=self.dispatcher if self.workers else None,
        )
        #: The schedule use cases (create, update, pause, resume, run now…).
        self.schedules = ScheduleService(
            self.stores.schedules,
            self.service,
            clock=self.clock,
            notifier=self.scheduler if self.workers else None,
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

    def create_api(self, authenticate: Authenticate | None = None) -> web.Application:
        """A new aiohttp application serving the HTTP API, to mount under the API prefix.

        Authenticated by ``authenticate`` or what :func:`build_authenticator` makes of
        ``settings.auth`` (ConfigurationError when that is nothing).
        """
        auth, limits, cors = self.settings.auth, self.settings.limits, self.settings.cors
        return create_api(
            self.service,
            authenticate=build_authenticator(auth, authenticate),
            public_paths=auth.public_paths,
            limits=ApiLimits(
                submit_rate_per_s=limits.submit_rate_per_s,
                submit_burst=limits.submit_burst,
                params_max_depth=limits.params_max_depth,
                params_max_keys=limits.params_max_keys,
            ),
            cors_origins=cors.origins,
            cors_allow_credentials=cors.allow_credentials,
            max_body_bytes=self.settings.api.max_body_bytes,
            body_read_timeout_s=self.settings.api.body_read_timeout_s,
            watcher=self.watcher,
            providers=self.providers,
            stats=self.stats,
            workers=self.dispatcher,
            schedules=self.schedules,
            queues=self.queue_service,
            assets=AssetService(self.stores.inventory),
        )

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        """What ``/health/ready`` checks: the store answers a ping, and, in a process with
        workers, the dispatcher runs (an API-only process never starts one)."""

        async def database() -> str | None:
            try:
                await self.tasks.ping()
            except DatabaseUnavailableError:
                return "unreachable"
            return None

        async def dispatcher() -> str | None:
            return None if self.dispatcher.running else "not running"

        if not self.workers:
            return {"database": database}
        return {"database": database, "dispatcher": dispatcher}

    async def start(self) -> None:
        """Create indexes, create or update the ``[[schedules]]`` of the settings, then (with
        workers) start the dispatcher and the scheduler. Idempotent."""
        if self._started:
            return
        self._started = True
        await self.tasks.initialize()
        await self.stores.inventory.initialize()
        await self.stores.schedules.initialize()
        await self.stores.slots.initialize()
        await self.stores.queues.initialize()
        await self._declare_schedules()
        if isinstance(self.tracer, OpenTelemetryTaskTracer) and not self.tracer.has_provider:
            logger.warning(
                "[tracing] is enabled but no OpenTelemetry tracer provider is set: spans go "
                "nowhere (set one in the host, or run under opentelemetry-instrument)"
            )
        if self.workers:
            await self.dispatcher.start()
            await self.scheduler.start()
        logger.info(
            "cam_tasks started (%s)",
            "workers: " + ", ".join(f"{q}={n}" for q, n in self.served_queues.items())
            if self.workers
            else "API only, no workers",
            extra={"backend": self.stores.backend, "types": sorted(self.registry.types)},
        )

    async def close(self) -> None:
        """Graceful stop, then close what this runtime opened. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.scheduler.close()
            await self.dispatcher.close()
        finally:
            await self.watcher.close()
            await self.http.close()
            await self.stores.close()

    async def _declare_schedules(self) -> None:
        """Create the ``[[schedules]]`` of the settings, or bring existing ones up to date."""
        declared = self.settings.schedules
        names = [schedule.name for schedule in declared]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigurationError(f"schedules declared twice: {', '.join(duplicates)}")
        deselected = set(BUILTIN_EXECUTORS) - set(self.registry.types)
        for schedule in declared:
            if schedule.type in deselected:
                # A built-in this process leaves to others ([executors] builtin): a process
                # that registers it declares the schedule, and only such a process fires it.
                logger.info(
                    "schedule %r left to processes that register %s",
                    schedule.name,
                    schedule.type,
                    extra={"type": schedule.type},
                )
                continue
            try:
                await self.schedules.ensure(
                    schedule.name,
                    expression=schedule.expression,
                    task_type=schedule.type,
                    params=schedule.params,
                    timezone=schedule.timezone,
                    priority=schedule.priority,
                    active=schedule.active,
                )
            except (InvalidParamsError, UnknownTaskTypeError) as exc:
                problems = "; ".join(
                    f"{'.'.join(str(part) for part in detail.get('loc', ()))}: {detail.get('msg')}"
                    for detail in getattr(exc, "details", ())
                )
                raise ConfigurationError(
                    f"schedule {schedule.name!r} in the settings is invalid: {exc}"
                    + (f" ({problems})" if problems else "")
                ) from None


CAM_TASKS_KEY = web.AppKey("cam_tasks", CamTasks)


def setup(
    app: web.Application,
    settings: Settings | None = None,
    *,
    executors: Iterable[TaskExecutor | ExecutorFactory] = (),
    providers: Iterable[AssetProvider] = (),
    database: Any = None,
    clock: Clock | None = None,
    dashboard_prefix: str | None = DEFAULT_DASHBOARD_PREFIX,
    authenticate: Authenticate | None = None,
    queues: Mapping[str, int] | None = None,
    workers: bool | None = None,
    tracer_provider: Any = None,
) -> CamTasks:
    """Mount cam_tasks into ``app``: the API under ``settings.api.prefix``, the dashboard under
    ``dashboard_prefix`` (``/cam/``; None leaves it out), ``/health/live``, ``/health/ready``
    and the metrics unless ``settings.monitoring`` turns them off, the runtime started and
    stopped with the app. Returns the runtime (also at ``app[CAM_TASKS_KEY]``).

    ``authenticate``: the host's own identity for API requests (``async (request) ->
    Principal``); without it, ``settings.auth`` decides (see :func:`build_authenticator`).
    ``executors``: instances or factories, as for :class:`CamTasks`; ``queues``: queues
    declared in Python (name -> concurrency), beside the settings' ``[queues.NAME]``.
    ``workers``: False mounts an API-only runtime (see :class:`CamTasks`); default
    ``settings.server.workers``. ``tracer_provider``: for the spans of ``[tracing]`` (default:
    the global OpenTelemetry provider)."""
    runtime = CamTasks(
        settings,
        executors=executors,
        providers=providers,
        database=database,
        clock=clock,
        queues=queues,
        workers=workers,
        tracer_provider=tracer_provider,
    )
    app[CAM_TASKS_KEY] = runtime
    app.add_subapp(runtime.settings.api.prefix, runtime.create_api(authenticate))
    if dashboard_prefix is not None:
        app.add_subapp(dashboard_prefix, create_dashboard(runtime.settings.api.prefix))
    monitoring = runtime.settings.monitoring
    if monitoring.health:
        checks = runtime.readiness_checks()
        app.add_routes(health_routes(checks, timeout_s=monitoring.ready_timeout_s))
    if monitoring.metrics:
        app.add_routes(metrics_routes(runtime.metrics, path=monitoring.metrics_path))

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        await runtime.start()
        yield
        await runtime.close()

    app.cleanup_ctx.append(lifecycle)
    return runtime
