"""The task commands (``submit``, ``list``, ``status``, ``watch``, ``cancel``, ``retry``,
``delete``) and ``stats``: each a call or two of :class:`~cam_tasks.client.CamTasksClient`."""

from __future__ import annotations

import argparse
from typing import Any, Final

from cam_tasks.cli.bulk import add_bulk_options, bulk_action, has_filter
from cam_tasks.cli.exits import ExitCode, UsageError
from cam_tasks.cli.render import stats_lines, task_fields, task_table
from cam_tasks.cli.session import (
    client_options,
    csv_list,
    print_fields,
    print_json,
    print_lines,
    read_json_object,
    run_client,
)
from cam_tasks.cli.watch import follow, submitted
from cam_tasks.client import CamTasksClient

__all__ = ["add_task_commands", "follow_options"]

_SHORTCUTS: Final = {"sync-assets": "sync_assets", "discover-assets": "discover_assets"}


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params = {} if args.params is None else read_json_object(args.params, "params")
    shortcut = {
        "provider": args.provider,
        "account_id": args.account_id,
        "asset_types": csv_list(args.asset_types),
        "regions": csv_list(args.regions),
    }
    given = {key: value for key, value in shortcut.items() if value is not None}
    if given and args.type not in _SHORTCUTS:
        flags = ", ".join(f"--{key.replace('_', '-')}" for key in given)
        raise UsageError(f"{flags}: only with {' or '.join(_SHORTCUTS)}")
    return {**params, **given}


def priority_value(value: str | None) -> int | str | None:
    """``--priority``: a name as is, digits as a number."""
    return int(value) if value is not None and value.isdigit() else value


async def _submit(client: CamTasksClient, args: argparse.Namespace) -> int:
    params = _params(args)
    task_id = await client.submit(
        _SHORTCUTS.get(args.type, args.type),
        params,
        priority=priority_value(args.priority),
        delay_s=args.delay_s,
        run_at=args.run_at,
        max_retries=args.max_retries,
        timeout_s=args.task_timeout_s,
        idempotency_key=args.idempotency_key,
    )
    return await submitted(client, task_id, watch=args.watch, wait_s=args.wait_s, as_json=args.json)


async def _list(client: CamTasksClient, args: argparse.Namespace) -> int:
    page = await client.list(
        task_type=args.type,
        statuses=csv_list(args.status),
        queue=args.queue,
        offset=args.offset,
        limit=args.limit,
    )
    if args.json:
        print_json(page)
    else:
        print_lines(task_table(page))
    return ExitCode.OK


async def _watch(client: CamTasksClient, args: argparse.Namespace) -> int:
    return await follow(client, args.task_id, wait_s=args.wait_s, as_json=args.json)


async def _delete(client: CamTasksClient, args: argparse.Namespace) -> int:
    await client.delete(args.task_id)
    if args.json:
        print_json({"task_id": args.task_id, "deleted": True})
    else:
        print(f"deleted {args.task_id}", flush=True)
    return ExitCode.OK


async def _show(client: CamTasksClient, args: argparse.Namespace) -> int:
    if args.command in ("cancel", "retry"):
        if args.task_id is None:
            return await bulk_action(client, args)
        if has_filter(args):
            raise UsageError(f"{args.command}: a task id or filter options, not both")
    actions = {"status": client.get, "cancel": client.cancel, "retry": client.retry}
    task = await actions[args.command](args.task_id)
    if args.json:
        print_json(task)
    else:
        print_fields(task_fields(task))
    return ExitCode.OK


async def _stats(client: CamTasksClient, args: argparse.Namespace) -> int:
    tasks = await client.task_stats(since=args.since, until=args.until, task_type=args.type)
    queue = await client.queue_stats()
    if args.json:
        print_json({"tasks": tasks, "queue": queue})
    else:
        print_lines(stats_lines(tasks, queue))
    return ExitCode.OK


def follow_options() -> argparse.ArgumentParser:
    """The options of the commands that follow a task (a parent parser)."""
    follow_parent = argparse.ArgumentParser(add_help=False)
    follow_parent.add_argument(
        "--wait-s", type=float, default=20.0, help="long-poll wait per request (default 20)"
    )
    return follow_parent


def add_task_commands(commands: Any, epilog: str) -> None:
    """Add the task commands and ``stats`` to the ``commands`` sub-parsers."""
    common, following = client_options(), follow_options()
    formatter = argparse.RawDescriptionHelpFormatter
    submit = commands.add_parser(
        "submit",
        parents=[common, following],
        help="submit a task; prints its id",
        description="Submit a task of TYPE with PARAMS (a JSON object, @FILE, or - for stdin). "
        "sync-assets and discover-assets also take their params as options. The submit carries "
        "an Idempotency-Key (--idempotency-key, else a fresh one) and is retried with it when "
        "the service is briefly unavailable, so it is stored once.",
        epilog=epilog,
        formatter_class=formatter,
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
    submit.set_defaults(handler=run_client, action=_submit)

    listing = commands.add_parser(
        "list",
        parents=[common],
        help="list tasks, newest first",
        epilog=epilog,
        formatter_class=formatter,
    )
    listing.add_argument("--type", help="only this task type")
    listing.add_argument("--status", help="only these statuses, comma-separated")
    listing.add_argument("--queue", help="only this queue")
    listing.add_argument("--offset", type=int, default=0)
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(handler=run_client, action=_list)

    for name, text in (
        ("status", "show one task"),
        ("cancel", "cancel a pending task (or ask a running one to stop); or every match"),
        ("retry", "re-run a failed or cancelled task; or every match"),
        ("delete", "delete a finished task"),
    ):
        command = commands.add_parser(
            name, parents=[common], help=text, epilog=epilog, formatter_class=formatter
        )
        if name in ("cancel", "retry"):
            # Without a task id, the filter options choose the tasks (prints how many).
            command.add_argument("task_id", nargs="?")
            add_bulk_options(command)
        else:
            command.add_argument("task_id")
        command.set_defaults(handler=run_client, action=_delete if name == "delete" else _show)

    watch = commands.add_parser(
        "watch",
        parents=[common, following],
        help="follow a task to its end",
        description="Follow a task until it completes, fails or is cancelled: one live line on "
        "a terminal (status, progress, step, elapsed, ETA), one line per change otherwise, one "
        "JSON object per change with --json; then how it ended.",
        epilog=epilog,
        formatter_class=formatter,
    )
    watch.add_argument("task_id")
    watch.set_defaults(handler=run_client, action=_watch)

    stats = commands.add_parser(
        "stats",
        parents=[common],
        help="task statistics and the queue of the answering instance",
        description="Counts by status, success rate and durations of the tasks created in "
        "[--since, --until) (default: the last 24 h), per type; and the queue of the instance "
        "that answers.",
        epilog=epilog,
        formatter_class=formatter,
    )
    stats.add_argument("--since", help="RFC 3339 time with a zone (default: 24 h ago)")
    stats.add_argument("--until", help="RFC 3339 time with a zone (default: now)")
    stats.add_argument("--type", help="only this task type")
    stats.set_defaults(handler=run_client, action=_stats)
