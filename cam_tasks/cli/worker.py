"""``cam-tasks worker``: workers and the scheduler without the HTTP API.

A worker process claims and runs the tasks of the queues it serves (``--queues`` or
``[worker] queues``; default every declared queue) and fires due schedules. It mounts no API:
submits reach it through the shared database from API processes (``serve --no-workers``) or
other instances. Orchestrators and Prometheus reach it on a small server of its own,
``[worker] host:port``, with ``/health/live``, ``/health/ready`` and the metrics (``[monitoring]``
decides which; ``port = 0`` or ``health = false`` leaves the server out).

SIGTERM or SIGINT stops it gracefully, as ``serve``: no new claims, running tasks get
``[queue] shutdown_timeout_s`` to finish, the rest are handed back as pending; then it exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Any

from aiohttp import web

from cam_tasks.cli.exits import ExitCode, UsageError
from cam_tasks.cli.logs import configure_logging
from cam_tasks.config import Settings, load_settings
from cam_tasks.domain import ConfigurationError
from cam_tasks.module import CamTasks
from cam_tasks.web import health_routes, metrics_routes

__all__ = ["add_worker_command", "monitoring_app", "parse_queues", "run_worker"]

logger = logging.getLogger("cam_tasks.cli")


def parse_queues(text: str) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``; UsageError when no name is given."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError("--queues needs at least one queue name, e.g. --queues default,exports")
    return names


def monitoring_app(runtime: CamTasks) -> web.Application | None:
    """The worker's small server: health probes and metrics as ``[monitoring]`` selects them;
    None when there is nothing to serve."""
    monitoring = runtime.settings.monitoring
    routes: list[web.RouteDef] = []
    if monitoring.health:
        routes += health_routes(runtime.readiness_checks(), timeout_s=monitoring.ready_timeout_s)
    if monitoring.metrics:
        routes += metrics_routes(runtime.metrics, path=monitoring.metrics_path)
    if not routes:
        return None
    app = web.Application()
    app.add_routes(routes)
    return app


async def run_worker(
    settings: Settings, *, on_built: Callable[[CamTasks], None] | None = None
) -> None:
    """Run a worker-only runtime until SIGTERM or SIGINT, then stop it gracefully.

    The health/metrics server listens before the runtime starts (liveness answers while indexes
    are created; readiness says 503 until the dispatcher runs) and closes after it stopped.
    Raises ConfigurationError when that server cannot listen, and what starting the runtime
    raises (DatabaseUnavailableError...)."""
    runtime = CamTasks(settings, workers=True)
    if on_built is not None:
        on_built(runtime)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    worker = settings.worker
    app = monitoring_app(runtime) if worker.health and worker.port else None
    runner = web.AppRunner(app, handle_signals=False) if app is not None else None
    try:
        if runner is not None:
            await runner.setup()
            try:
                await web.TCPSite(runner, worker.host, worker.port).start()
            except OSError as exc:
                raise ConfigurationError(
                    f"the worker's health server cannot listen on {worker.host}:{worker.port}: "
                    f"{exc.strerror or exc}"
                ) from None
            logger.info("health and metrics on http://%s:%d", worker.host, worker.port)
        async with runtime:
            logger.info("worker running; SIGTERM stops it gracefully")
            await stop.wait()
            logger.info("signal received: stopping gracefully")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        if runner is not None:
            await runner.cleanup()


def _worker(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.queues is not None:
        settings = load_settings(args.config)
        worker = settings.worker.model_copy(update={"queues": parse_queues(args.queues)})
        overrides["worker"] = worker.model_dump()
    settings = load_settings(args.config, **overrides)
    log_context = configure_logging(settings.log)
    loop_factory = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        logger.info("uvloop not installed; using the default asyncio event loop")

    def name_the_owner(runtime: CamTasks) -> None:
        # Every record names the dispatcher's owner id (the one its leases carry).
        log_context.fields["owner"] = runtime.dispatcher.owner

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run_worker(settings, on_built=name_the_owner))
    return ExitCode.OK


def add_worker_command(commands: Any) -> None:
    """Add ``worker`` to the ``commands`` sub-parsers."""
    worker = commands.add_parser(
        "worker",
        help="run workers and the scheduler without the HTTP API",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_argument("--config", help="TOML settings file (CAM_TASKS_* variables override it)")
    worker.add_argument(
        "--queues",
        metavar="A,B",
        help="serve only these declared queues (overrides [worker] queues)",
    )
    worker.set_defaults(handler=_worker)
