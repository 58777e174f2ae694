"""create_api: the API as an aiohttp sub-application, ready for a host to mount."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from cam_tasks.assets import ProviderRegistry
from cam_tasks.service import AssetService, QueueService, ScheduleService, TaskService
from cam_tasks.service.stats import StatsService, WorkerPool
from cam_tasks.service.watch import TaskWatcher
from cam_tasks.web import events
from cam_tasks.web.asset_routes import ASSETS_KEY, asset_routes
from cam_tasks.web.auth import Authenticate, authentication_middleware
from cam_tasks.web.bulk_routes import bulk_routes, purge_routes
from cam_tasks.web.cors import enable_cors
from cam_tasks.web.docs_page import DOCS_PUBLIC_PATHS, add_docs
from cam_tasks.web.errors import error_middleware
from cam_tasks.web.keys import SERVICE_KEY, WATCHER_KEY
from cam_tasks.web.limits import LIMITER_KEY, ApiLimits, RequestLimiter
from cam_tasks.web.provider_routes import PROVIDERS_KEY, provider_routes
from cam_tasks.web.queue_routes import QUEUES_KEY, queue_routes
from cam_tasks.web.requests import (
    BODY_READ_TIMEOUT_S_KEY,
    DEFAULT_BODY_READ_TIMEOUT_S,
    MAX_BODY_BYTES_KEY,
)
from cam_tasks.web.routes import routes
from cam_tasks.web.schedule_routes import SCHEDULES_KEY, schedule_routes
from cam_tasks.web.stats_routes import STATS_KEY, WORKERS_KEY, stats_routes
from cam_tasks.web.submit_routes import submit_routes
from cam_tasks.web.tagged_views import TAGGED_VIEWS_KEY, TaggedViews

__all__ = ["DEFAULT_MAX_BODY_BYTES", "create_api"]

DEFAULT_MAX_BODY_BYTES = 1_048_576


def create_api(
    service: TaskService,
    *,
    authenticate: Authenticate,
    public_paths: Iterable[str] = (),
    limits: ApiLimits | RequestLimiter | None = None,
    cors_origins: Iterable[str] = (),
    cors_allow_credentials: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    body_read_timeout_s: float = DEFAULT_BODY_READ_TIMEOUT_S,
    watcher: TaskWatcher | None = None,
    sse_keepalive_s: float = events.DEFAULT_KEEPALIVE_S,
    stats: StatsService | None = None,
    workers: WorkerPool | None = None,
    schedules: ScheduleService | None = None,
    providers: ProviderRegistry | None = None,
    queues: QueueService | None = None,
    assets: AssetService | None = None,
) -> web.Application:
    """The task API over ``service``, meant to be mounted by a host application::

        host_app.add_subapp("/api/v1/cam", create_api(service, authenticate=...))

    Paths inside it are relative (``/tasks``…); ``Location`` headers carry the mount prefix.
    Request bodies larger than ``max_body_bytes`` are refused with 413 (the host app's
    ``client_max_size`` does not apply to a sub-app's own reading), and bodies that have not
    all arrived ``body_read_timeout_s`` after the handler started reading them with 408. The
    app neither starts nor stops the service: its owner (the composition root) does.
    ValueError when ``max_body_bytes < 1``, ``body_read_timeout_s <= 0`` or
    ``sse_keepalive_s <= 0``.

    Long polls and event streams wait on ``watcher``; give the one the composition root wired
    to its :class:`ObservedTaskRepository` so local changes wake them at once. Without one, a
    watcher that only polls ``service`` is made. Either way it is closed when the application
    shuts down (``on_shutdown``), which ends open streams and long polls at once instead of
    holding the graceful stop up.

    With ``stats`` and ``workers`` (the local dispatcher), ``/tasks/stats`` and
    ``/queue/stats`` are served too (ValueError when only one is given). With ``schedules``,
    ``/schedules…`` is served (docs/scheduling.md); with ``providers``, ``GET /providers``; with
    ``queues``, ``GET /queues`` and ``POST /queues/{name}/pause|resume``; with ``assets``,
    ``GET /assets`` and ``GET /assets/summary``. The bulk routes (``POST /tasks/retry``,
    ``POST /tasks/cancel``, ``DELETE /tasks``) are always served.
    ``/openapi.json`` (the OpenAPI document of
    the routes served, generated from their models and ``service.registry``) and ``/docs`` (a
    page showing it) are always served, without authentication.

    Security (docs/security.md): every request, on every route of this app, is authenticated
    by ``authenticate`` (the host's hook, :class:`BearerTokenAuthenticator`, or
    :func:`allow_anonymous` said explicitly) before its handler runs, except the route
    templates in ``public_paths``; handlers act as the principal it returns. ``limits`` bounds
    submits per principal and the shape of ``params`` (defaults: no rate limit, the default
    shape limits). ``cors_origins`` turns CORS on for those origins (off when empty;
    ValueError for ``*`` with ``cors_allow_credentials``).
    """
    if max_body_bytes < 1:
        raise ValueError("max_body_bytes must be >= 1")
    if not body_read_timeout_s > 0:
        raise ValueError("body_read_timeout_s must be > 0")
    if not sse_keepalive_s > 0:
        raise ValueError("sse_keepalive_s must be > 0")
    if (stats is None) != (workers is None):
        raise ValueError("stats and workers go together")
    watcher = watcher if watcher is not None else TaskWatcher(service)
    origins = tuple(cors_origins)
    authentication = authentication_middleware(
        authenticate,
        public_paths=(*public_paths, *DOCS_PUBLIC_PATHS),
        allow_preflight=bool(origins),
    )
    app = web.Application(middlewares=[error_middleware, authentication])
    app[LIMITER_KEY] = (
        limits if isinstance(limits, RequestLimiter) else RequestLimiter(limits or ApiLimits())
    )
    app[SERVICE_KEY] = service
    app[MAX_BODY_BYTES_KEY] = max_body_bytes
    app[BODY_READ_TIMEOUT_S_KEY] = body_read_timeout_s
    app[WATCHER_KEY] = watcher
    app[TAGGED_VIEWS_KEY] = TaggedViews(service.clock.now)
    app[events.KEEPALIVE_S_KEY] = sse_keepalive_s
    # POST, DELETE and GET /tasks in a row: one resource (see bulk_routes.purge_routes).
    app.add_routes(submit_routes)
    app.add_routes(purge_routes)
    app.add_routes(routes)
    app.add_routes(bulk_routes)
    app.add_routes(events.routes)
    if stats is not None and workers is not None:
        app[STATS_KEY] = stats
        app[WORKERS_KEY] = workers
        app.add_routes(stats_routes)
    if schedules is not None:
        app[SCHEDULES_KEY] = schedules
        app.add_routes(schedule_routes)
    if providers is not None:
        app[PROVIDERS_KEY] = providers
        app.add_routes(provider_routes)
    if queues is not None:
        app[QUEUES_KEY] = queues
        app.add_routes(queue_routes)
    if assets is not None:
        app[ASSETS_KEY] = assets
        app.add_routes(asset_routes)
    add_docs(app)

    async def stop_waiting(_: web.Application) -> None:
        await watcher.close()

    app.on_shutdown.append(stop_waiting)
    # Keep last: CORS is set up for the routes that exist when it is called.
    enable_cors(app, origins, allow_credentials=cors_allow_credentials)
    return app
