"""Bulk actions and queues: ``retry`` / ``cancel`` with filters (no task id), ``purge``, and
``queues list|pause|resume``. Each a call of :class:`~cam_tasks.client.CamTasksClient`."""

from __future__ import annotations

import argparse
import re
from typing import Any, Final

from cam_tasks.cli.exits import ExitCode, UsageError
from cam_tasks.cli.session import client_options, csv_list, print_json, print_lines, run_client
from cam_tasks.client import CamTasksClient

__all__ = ["add_bulk_options", "add_queue_commands", "bulk_action", "has_filter"]

_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
#: The filter options and the API's names for them.
_FILTERS: Final = {
    "type": "type",
    "queue": "queue",
    "status": "status",
    "error_type": "error_type",
    "finished_before": "finished_before",
    "finished_after": "finished_after",
}
_DONE: Final = {"retry": "retried", "cancel": "cancelled", "purge": "deleted"}


def _instant(value: str | None) -> str | None:
    """A bare date (``2026-11-01``) is midnight UTC; anything else goes as given (RFC 3339)."""
    if value is not None and _DATE.fullmatch(value):
        return f"{value}T00:00:00Z"
    return value


def add_bulk_options(parser: argparse.ArgumentParser) -> None:
    """The filter options of the bulk actions (``retry``, ``cancel``, ``purge``)."""
    group = parser.add_argument_group("filter (without a task id: every matching task)")
    group.add_argument("--type", help="only this task type")
    group.add_argument("--queue", help="only this queue")
    group.add_argument("--status", help="only these statuses, comma-separated")
    group.add_argument("--error-type", help="only tasks whose last error has this type")
    group.add_argument(
        "--finished-before", help="finished before this RFC 3339 time (a bare date: 00:00 UTC)"
    )
    group.add_argument(
        "--finished-after", help="finished at or after this RFC 3339 time (or a bare date)"
    )


def _criteria(args: argparse.Namespace) -> dict[str, Any]:
    criteria = {api: getattr(args, option) for option, api in _FILTERS.items()}
    criteria["status"] = csv_list(args.status)
    criteria["finished_before"] = _instant(args.finished_before)
    criteria["finished_after"] = _instant(args.finished_after)
    return {key: value for key, value in criteria.items() if value is not None}


def has_filter(args: argparse.Namespace) -> bool:
    """Whether any filter option was given."""
    return any(getattr(args, option) is not None for option in _FILTERS)


async def bulk_action(client: CamTasksClient, args: argparse.Namespace) -> int:
    """``retry`` / ``cancel`` by filter, and ``purge``: prints how many tasks it changed."""
    criteria = _criteria(args)
    if not criteria:
        raise UsageError(f"{args.command}: give a task id or at least one filter option")
    calls = {
        "retry": client.retry_many,
        "cancel": client.cancel_many,
        "purge": client.delete_many,
    }
    count = await calls[args.command](**criteria)
    if args.json:
        print_json({"count": count})
    else:
        print(f"{_DONE[args.command]} {count} task(s)", flush=True)
    return ExitCode.OK


def _queue_table(queues: list[dict[str, Any]]) -> list[str]:
    rows = [("NAME", "CONCURRENCY", "PAUSED", "PENDING", "RUNNING")]
    for queue in queues:
        rows.append(
            (
                str(queue["name"]),
                str(queue["concurrency"]),
                "yes" if queue["paused"] else "no",
                str(queue["pending"]),
                str(queue["running"]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


async def _list(client: CamTasksClient, args: argparse.Namespace) -> int:
    queues = await client.queues()
    if args.json:
        print_json({"queues": queues})
    else:
        print_lines(_queue_table(queues))
    return ExitCode.OK


async def _set(client: CamTasksClient, args: argparse.Namespace) -> int:
    paused = args.queue_command == "pause"
    queue = await (client.pause_queue if paused else client.resume_queue)(args.name)
    if args.json:
        print_json(queue)
    else:
        print(f"{'paused' if paused else 'resumed'} {queue['name']}", flush=True)
    return ExitCode.OK


def add_queue_commands(commands: Any, epilog: str) -> None:
    """Add ``purge`` and ``queues list|pause|resume`` to the ``commands`` sub-parsers."""
    common = client_options()
    formatter = argparse.RawDescriptionHelpFormatter
    purge = commands.add_parser(
        "purge",
        parents=[common],
        help="delete every finished task a filter matches",
        description="On-demand clean-up: delete the completed, failed or cancelled tasks that "
        "match the filter (at least one option); active tasks are never deleted. Prints how "
        "many were deleted.",
        epilog=epilog,
        formatter_class=formatter,
    )
    add_bulk_options(purge)
    purge.set_defaults(handler=run_client, action=bulk_action)

    group = commands.add_parser(
        "queues",
        help="list, pause and resume queues",
        description="The queues of the cluster. A paused queue's pending tasks are claimed by "
        "no instance (within its poll interval); running ones finish.",
        epilog=epilog,
        formatter_class=formatter,
    )
    actions = group.add_subparsers(dest="queue_command", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list", parents=[common], help="every queue with its concurrency, flag and tasks"
    )
    listing.set_defaults(handler=run_client, action=_list)
    for name, text in (("pause", "pause a queue cluster-wide"), ("resume", "resume a queue")):
        command = actions.add_parser(name, parents=[common], help=text)
        command.add_argument("name", help="queue name")
        command.set_defaults(handler=run_client, action=_set)
