"""cam-tasks: run a cam_tasks service, and drive one over its HTTP API."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from cam_tasks import __version__
from cam_tasks.client import (
    DEFAULT_PREFIX,
    DEFAULT_URL,
    ApiResponseError,
    CamTasksClient,
    ServiceUnreachableError,
)
from cam_tasks.config import LogSettings, Settings, load_settings
from cam_tasks.domain import CamTasksError
from cam_tasks.module import CAM_TASKS_KEY, setup
from cam_tasks.web import LogContextFilter

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


def configure_logging(
    settings: LogSettings, fields: Mapping[str, str] | None = None
) -> LogContextFilter:
    """Log to stderr as ``settings`` say. Every record gets the id of the request it was logged
    for (``request_id``) and ``fields``; the returned filter takes more fields later."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    context = LogContextFilter(fields)
    handler.addFilter(context)
    logging.basicConfig(level=settings.level, handlers=[handler], force=True)
    return context


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
    log_context = configure_logging(settings.log)
    if settings.mongo.uri.startswith("memory://"):
        logger.warning("storage is memory://: tasks live in this process and are lost on exit")
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


# -- client commands: the API of a running service ----------------------------------------------

EXIT_API_ERROR = 1  # the API answered an error (its msg and details are printed)
EXIT_USAGE = 2  # bad arguments (argparse's own code too)
EXIT_UNREACHABLE = 3  # no answer from --url
EXIT_TASK_FAILED = 4  # watch: the task failed
EXIT_TASK_CANCELLED = 5  # watch: the task was cancelled

_SHORTCUTS = {"sync-assets": "sync_assets", "discover-assets": "discover_assets"}
_BAR_WIDTH = 30


class _UsageError(Exception):
    pass


def _print_json(value: Any) -> None:
    print(orjson.dumps(value).decode(), flush=True)


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [part.strip() for part in value.split(",") if part.strip()]


def _params(args: argparse.Namespace) -> dict[str, Any]:
    raw: str | None = args.params
    params: Any = {}
    if raw is not None:
        text = raw
        if raw == "-":
            text = sys.stdin.read()
        elif raw.startswith("@"):
            try:
                with open(raw[1:], encoding="utf-8") as file:
                    text = file.read()
            except OSError as exc:
                raise _UsageError(f"cannot read {raw[1:]}: {exc.strerror}") from None
        try:
            params = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise _UsageError(f"params are not valid JSON: {exc}") from None
        if not isinstance(params, dict):
            raise _UsageError("params must be a JSON object")
    shortcut = {
        "provider": args.provider,
        "account_id": args.account_id,
        "asset_types": _csv(args.asset_types),
        "regions": _csv(args.regions),
    }
    given = {key: value for key, value in shortcut.items() if value is not None}
    if given and args.type not in _SHORTCUTS:
        flags = ", ".join(f"--{key.replace('_', '-')}" for key in given)
        raise _UsageError(f"{flags}: only with {' or '.join(_SHORTCUTS)}")
    return {**params, **given}


def _duration(task: dict[str, Any]) -> str:
    seconds = task.get("duration")
    return "" if seconds is None else f"{seconds:.1f}s"


def _bar(task: dict[str, Any]) -> str:
    percent = float(task.get("progress") or 0.0)
    filled = round(_BAR_WIDTH * percent / 100)
    return f"[{'#' * filled}{'-' * (_BAR_WIDTH - filled)}] {percent:5.1f}%"


def _one_line(task: dict[str, Any]) -> str:
    steps = task.get("step"), task.get("total_steps")
    parts = [f"{task['status']:<9}", f"{float(task.get('progress') or 0):5.1f}%"]
    if steps[1]:
        parts.append(f"step {steps[0] or 0}/{steps[1]}")
    if task.get("message"):
        parts.append(str(task["message"]))
    return "  ".join(parts)


def _outcome(task: dict[str, Any]) -> str:
    error = task.get("error") or {}
    if task["status"] == "completed":
        return f"completed in {_duration(task) or '?'}"
    reason = f": {error.get('type')}: {error.get('message')}" if error else ""
    return f"{task['status']}{reason}"


def _show_task(task: dict[str, Any]) -> None:
    rows = [
        ("id", task["id"]),
        ("type", task["type"]),
        (
            "status",
            task["status"] + (" (cancel requested)" if task.get("cancel_requested") else ""),
        ),
        ("progress", _one_line(task).split("  ", 1)[1].strip()),
        ("attempts", f"{task.get('attempts')} of {int(task.get('max_retries', 0)) + 1}"),
        ("priority", task.get("priority_name", task.get("priority"))),
        ("created", task.get("created_at")),
        ("started", task.get("started_at") or "-"),
        ("completed", task.get("completed_at") or "-"),
        ("duration", _duration(task) or "-"),
        ("created by", task.get("created_by")),
    ]
    if task.get("error"):
        rows.append(("error", f"{task['error']['type']}: {task['error']['message']}"))
    if task.get("result") is not None:
        rows.append(("result", orjson.dumps(task["result"]).decode()))
    for name, value in rows:
        print(f"{name + ':':<12}{value}")


def _show_table(page: dict[str, Any]) -> None:
    rows = [("ID", "TYPE", "STATUS", "PROGRESS", "CREATED", "DURATION", "MESSAGE")]
    for task in page["tasks"]:
        rows.append(
            (
                task["id"],
                task["type"],
                task["status"],
                f"{float(task.get('progress') or 0):.0f}%",
                str(task.get("created_at", "")),
                _duration(task),
                str(task.get("message") or "")[:40],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]
        )
    print(f"{len(page['tasks'])} of {page['total']} task(s)")


async def _follow(client: CamTasksClient, task_id: str, args: argparse.Namespace) -> int:
    live = sys.stdout.isatty() and not args.json
    task: dict[str, Any] = {}
    async for task in client.watch(task_id, wait_s=args.wait_s):
        if args.json:
            _print_json(task)
        elif live:
            line = f"\r{_bar(task)}  {_one_line(task).split('  ', 1)[1]}"
            width = shutil.get_terminal_size().columns
            print(line[: width - 1].ljust(width - 1), end="", flush=True)
        else:
            print(_one_line(task), flush=True)
    if live:
        print()
    if not args.json:
        print(_outcome(task), flush=True)
    status = task.get("status")
    if status == "failed":
        return EXIT_TASK_FAILED
    return EXIT_TASK_CANCELLED if status == "cancelled" else 0


async def _run_client_command(args: argparse.Namespace) -> int:
    async with CamTasksClient(args.url, prefix=args.api_prefix, token=args.token) as client:
        command = args.command
        if command == "submit":
            task_type = _SHORTCUTS.get(args.type, args.type)
            task_id = await client.submit(
                task_type,
                _params(args),
                priority=int(args.priority) if (args.priority or "").isdigit() else args.priority,
                delay_s=args.delay_s,
                run_at=args.run_at,
                max_retries=args.max_retries,
                timeout_s=args.task_timeout_s,
                idempotency_key=args.idempotency_key,
            )
            if args.json:
                _print_json({"task_id": task_id})
            else:
                print(task_id, flush=True)
            return await _follow(client, task_id, args) if args.watch else 0
        if command == "list":
            page = await client.list(
                task_type=args.type,
                statuses=_csv(args.status),
                offset=args.offset,
                limit=args.limit,
            )
            if args.json:
                _print_json(page)
            else:
                _show_table(page)
            return 0
        if command == "watch":
            return await _follow(client, args.task_id, args)
        if command == "delete":
            await client.delete(args.task_id)
            if args.json:
                _print_json({"task_id": args.task_id, "deleted": True})
            else:
                print(f"deleted {args.task_id}")
            return 0
        actions = {"status": client.get, "cancel": client.cancel, "retry": client.retry}
        task = await actions[command](args.task_id)
        if args.json:
            _print_json(task)
        else:
            _show_task(task)
        return 0


def _client(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run_client_command(args))
    except _UsageError as exc:
        print(f"cam-tasks {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ServiceUnreachableError as exc:
        print(f"cam-tasks: {exc} (is the service running? see --url)", file=sys.stderr)
        return EXIT_UNREACHABLE
    except ApiResponseError as exc:
        print(f"cam-tasks: {exc.msg} (HTTP {exc.status}, {exc.error})", file=sys.stderr)
        for detail in exc.details:
            if isinstance(detail, dict) and "msg" in detail:
                where = ".".join(str(part) for part in detail.get("loc", []))
                print(f"  {where + ': ' if where else ''}{detail['msg']}", file=sys.stderr)
            else:
                print(f"  {orjson.dumps(detail).decode()}", file=sys.stderr)
        return EXIT_API_ERROR


def _add_client_commands(commands: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=os.environ.get("CAM_TASKS_URL", DEFAULT_URL),
        help=f"the service (default: $CAM_TASKS_URL or {DEFAULT_URL})",
    )
    common.add_argument(
        "--token",
        default=os.environ.get("CAM_TASKS_TOKEN"),
        help="bearer token (default: $CAM_TASKS_TOKEN; prefer it to keep tokens out of history)",
    )
    common.add_argument(
        "--api-prefix", default=DEFAULT_PREFIX, help=f"where the API is mounted ({DEFAULT_PREFIX})"
    )
    common.add_argument("--json", action="store_true", help="JSON output, for scripts")
    follow = argparse.ArgumentParser(add_help=False)
    follow.add_argument(
        "--wait-s", type=float, default=20.0, help="long-poll wait per request (default 20)"
    )

    submit = commands.add_parser(
        "submit",
        parents=[common, follow],
        help="submit a task; prints its id",
        description="Submit a task of TYPE with PARAMS (a JSON object, @FILE, or - for stdin). "
        "sync-assets and discover-assets also take their params as options.",
    )
    submit.add_argument("type", help="task type, or the shortcut sync-assets / discover-assets")
    submit.add_argument("params", nargs="?", help="JSON object, @file.json, or - (stdin)")
    submit.add_argument("--priority", help="low | normal | high | urgent (or 0-3)")
    when = submit.add_mutually_exclusive_group()
    when.add_argument("--delay-s", type=float, help="run no sooner than this many seconds")
    when.add_argument("--run-at", help="run no sooner than this RFC 3339 time")
    submit.add_argument("--max-retries", type=int, help="retries after the first attempt")
    submit.add_argument("--task-timeout-s", type=float, help="time limit of each attempt")
    submit.add_argument("--idempotency-key", help="a second submit with it returns the first")
    submit.add_argument("--provider", help="shortcut param: provider")
    submit.add_argument("--account-id", help="shortcut param: account_id")
    submit.add_argument("--asset-types", help="shortcut param: asset_types, comma-separated")
    submit.add_argument("--regions", help="shortcut param: regions, comma-separated")
    submit.add_argument("--watch", action="store_true", help="then watch it (as `watch`)")
    submit.set_defaults(handler=_client)

    listing = commands.add_parser("list", parents=[common], help="list tasks, newest first")
    listing.add_argument("--type", help="only this task type")
    listing.add_argument("--status", help="only these statuses, comma-separated")
    listing.add_argument("--offset", type=int, default=0)
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(handler=_client)

    for name, text in (
        ("status", "show one task"),
        ("cancel", "cancel a pending task, or ask a running one to stop"),
        ("retry", "re-run a failed or cancelled task"),
        ("delete", "delete a finished task"),
    ):
        command = commands.add_parser(name, parents=[common], help=text)
        command.add_argument("task_id")
        command.set_defaults(handler=_client)
    watch = commands.add_parser(
        "watch",
        parents=[common, follow],
        help="follow a task to its end with a progress bar",
        description="Exit status: 0 completed, 4 failed, 5 cancelled "
        "(1 API error, 2 usage, 3 service unreachable).",
    )
    watch.add_argument("task_id")
    watch.set_defaults(handler=_client)


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
    _add_client_commands(commands)
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
