"""What every client command shares: the options that reach the service, one client session
per run, printing for people or scripts, and the translation of expected failures (the API's
errors, an unreachable service, bad arguments) into one message on stderr and an exit code."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson

from cam_tasks.cli.exits import ExitCode, UsageError
from cam_tasks.client import (
    DEFAULT_PREFIX,
    DEFAULT_URL,
    ApiResponseError,
    CamTasksClient,
    ServiceUnreachableError,
)

__all__ = [
    "Action",
    "client_options",
    "csv_list",
    "print_fields",
    "print_json",
    "print_lines",
    "read_json_object",
    "run_client",
]

#: A client command: does its work with the client, prints, and returns its exit code.
Action = Callable[[CamTasksClient, argparse.Namespace], Awaitable[int]]


def _url(value: str) -> str:
    try:
        CamTasksClient(value)  # validates without opening anything
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def client_options() -> argparse.ArgumentParser:
    """The options of every client command (a parent parser)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        type=_url,
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
    return common


def print_json(value: Any) -> None:
    print(orjson.dumps(value).decode(), flush=True)


def print_lines(lines: Iterable[str]) -> None:
    print("\n".join(lines), flush=True)


def print_fields(rows: Iterable[tuple[str, str]]) -> None:
    print_lines(f"{name + ':':<12}{value}" for name, value in rows)


def csv_list(value: str | None) -> list[str] | None:
    """``"a, b,"`` -> ``["a", "b"]``; None stays None."""
    return None if value is None else [part.strip() for part in value.split(",") if part.strip()]


def read_json_object(raw: str, what: str) -> dict[str, Any]:
    """A JSON object given inline, as ``@FILE`` or as ``-`` (stdin); :class:`UsageError`
    naming ``what`` when it cannot be read or is not an object."""
    text = raw
    if raw == "-":
        text = sys.stdin.read()
    elif raw.startswith("@"):
        try:
            with open(raw[1:], encoding="utf-8") as file:
                text = file.read()
        except OSError as exc:
            raise UsageError(f"cannot read {raw[1:]}: {exc.strerror}") from None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{what} are not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{what} must be a JSON object")
    return value


async def _with_client(action: Action, args: argparse.Namespace) -> int:
    async with CamTasksClient(args.url, prefix=args.api_prefix, token=args.token) as client:
        return await action(client, args)


def _print_api_error(exc: ApiResponseError) -> None:
    print(f"cam-tasks: {exc.msg} (HTTP {exc.status}, {exc.error})", file=sys.stderr)
    for detail in exc.details:
        if isinstance(detail, dict) and "msg" in detail:
            where = ".".join(str(part) for part in detail.get("loc", []))
            print(f"  {where + ': ' if where else ''}{detail['msg']}", file=sys.stderr)
        else:
            print(f"  {orjson.dumps(detail).decode()}", file=sys.stderr)


def run_client(args: argparse.Namespace) -> int:
    """Run the command's ``args.action`` against the service; expected failures end in one
    message on stderr (plus the API's details) and their exit code, never a traceback."""
    try:
        return asyncio.run(_with_client(args.action, args))
    except UsageError as exc:
        print(f"cam-tasks {args.command}: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except ServiceUnreachableError as exc:
        print(f"cam-tasks: {exc} (is the service running? see --url)", file=sys.stderr)
        return ExitCode.UNREACHABLE
    except ApiResponseError as exc:
        _print_api_error(exc)
        return ExitCode.API_ERROR
