"""``cam-tasks serve`` (the standalone service; ``--no-workers``: the API only) and
``cam-tasks plugins``."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from aiohttp import web

from cam_tasks.cli.logs import configure_logging
from cam_tasks.config import Settings, load_settings
from cam_tasks.module import CAM_TASKS_KEY, setup

__all__ = ["add_serve_commands", "build_app"]

logger = logging.getLogger("cam_tasks.cli")


def build_app(settings: Settings) -> web.Application:
    """The standalone service: the cam_tasks API and runtime in an otherwise empty app."""
    app = web.Application()
    setup(app, settings)
    return app


def _plugins(args: argparse.Namespace) -> int:
    from cam_tasks.plugins import discover

    found = discover()
    for plugin in found:
        print(plugin)
    if not found:
        print("no plug-ins installed (entry point groups cam_tasks.executors, cam_tasks.providers)")
    return 0


def _serve(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    settings = load_settings(args.config)
    changes = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if args.no_workers:
        changes["workers"] = False
    if changes:
        server = settings.server.model_copy(update=changes)
        overrides["server"] = server.model_dump()
        settings = load_settings(args.config, **overrides)
    # (memory:// is announced once, by the store itself, whoever starts it.)
    log_context = configure_logging(settings.log)
    loop = None
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        logger.info("uvloop not installed; using the default asyncio event loop")
    app = build_app(settings)
    # One runtime per process here: every record names the dispatcher's owner id (the one its
    # leases carry), so logs of several instances can be told apart.
    log_context.fields["owner"] = app[CAM_TASKS_KEY].dispatcher.owner
    web.run_app(
        app,
        host=settings.server.host,
        port=settings.server.port,
        loop=loop,
        print=lambda msg: logger.info(msg.strip()),
    )
    return 0


def add_serve_commands(commands: Any) -> None:
    """Add ``serve`` and ``plugins`` to the ``commands`` sub-parsers."""
    serve = commands.add_parser(
        "serve", help="run the HTTP API and the workers (--no-workers: the API only)"
    )
    serve.add_argument("--config", help="TOML settings file (CAM_TASKS_* variables override it)")
    serve.add_argument("--host", help="override [server] host")
    serve.add_argument("--port", type=int, help="override [server] port")
    serve.add_argument(
        "--no-workers",
        action="store_true",
        help="serve the API only: validate and store submits, run nothing; `cam-tasks worker` "
        "processes on the same database run them ([server] workers = false)",
    )
    serve.set_defaults(handler=_serve)
    plugins = commands.add_parser("plugins", help="list installed executor and provider plug-ins")
    plugins.set_defaults(handler=_plugins)
