"""The ``cam-tasks`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from cam_tasks import __version__
from cam_tasks.config import LogSettings, Settings, load_settings
from cam_tasks.domain import CamTasksError
from cam_tasks.module import setup

__all__ = ["build_app", "main"]

logger = logging.getLogger("cam_tasks.cli")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and the record's ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS})
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(settings: LogSettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.level, handlers=[handler], force=True)


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
    if args.host or args.port is not None:
        server = settings.server.model_copy(
            update={k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        )
        overrides["server"] = server.model_dump()
        settings = load_settings(args.config, **overrides)
    configure_logging(settings.log)
    if settings.mongo.uri.startswith("memory://"):
        logger.warning("storage is memory://: tasks live in this process and are lost on exit")
    loop = None
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        logger.info("uvloop not installed; using the default asyncio event loop")
    web.run_app(
        build_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        loop=loop,
        print=lambda msg: logger.info(msg.strip()),
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cam-tasks", description=__doc__)
    parser.add_argument("--version", action="version", version=f"cam-tasks {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP API and the workers")
    serve.add_argument("--config", help="TOML settings file (CAM_TASKS_* variables override it)")
    serve.add_argument("--host", help="override [server] host")
    serve.add_argument("--port", type=int, help="override [server] port")
    serve.set_defaults(handler=_serve)
    plugins = commands.add_parser("plugins", help="list installed executor and provider plug-ins")
    plugins.set_defaults(handler=_plugins)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        result: int = args.handler(args)
    except CamTasksError as exc:
        print(f"cam-tasks: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
