"""``cam-tasks schedules …``: list, show, create, update, pause, resume, run and delete the
schedules of a service (admin principals only, as the API has it)."""

from __future__ import annotations

import argparse
from typing import Any

from cam_tasks.cli.commands import follow_options, priority_value
from cam_tasks.cli.exits import ExitCode, UsageError
from cam_tasks.cli.render import schedule_fields, schedule_table
from cam_tasks.cli.session import (
    client_options,
    print_fields,
    print_json,
    print_lines,
    read_json_object,
    run_client,
)
from cam_tasks.cli.watch import submitted
from cam_tasks.client import CamTasksClient

__all__ = ["add_schedule_commands"]


def _show(schedule: dict[str, Any], args: argparse.Namespace) -> int:
    if args.json:
        print_json(schedule)
    else:
        print_fields(schedule_fields(schedule))
    return ExitCode.OK


def _params(args: argparse.Namespace) -> dict[str, Any] | None:
    return None if args.params is None else read_json_object(args.params, "params")


async def _list(client: CamTasksClient, args: argparse.Namespace) -> int:
    page = await client.list_schedules(active=args.active, offset=args.offset, limit=args.limit)
    if args.json:
        print_json(page)
    else:
        print_lines(schedule_table(page))
    return ExitCode.OK


async def _get(client: CamTasksClient, args: argparse.Namespace) -> int:
    return _show(await client.get_schedule(args.name), args)


async def _create(client: CamTasksClient, args: argparse.Namespace) -> int:
    schedule = await client.create_schedule(
        args.name,
        expression=args.expression,
        task_type=args.type,
        params=_params(args),
        timezone=args.timezone,
        priority=priority_value(args.priority),
        active=False if args.paused else None,
    )
    return _show(schedule, args)


async def _update(client: CamTasksClient, args: argparse.Namespace) -> int:
    changes = {
        "expression": args.expression,
        "task_type": args.type,
        "params": _params(args),
        "timezone": args.timezone,
        "priority": priority_value(args.priority),
    }
    if all(value is None for value in changes.values()):
        raise UsageError(
            "nothing to change: give --expression, --type, --params, --timezone or --priority"
        )
    return _show(await client.update_schedule(args.name, **changes), args)


async def _pause(client: CamTasksClient, args: argparse.Namespace) -> int:
    return _show(await client.pause_schedule(args.name), args)


async def _resume(client: CamTasksClient, args: argparse.Namespace) -> int:
    return _show(await client.resume_schedule(args.name), args)


async def _run(client: CamTasksClient, args: argparse.Namespace) -> int:
    task_id = await client.run_schedule(args.name)
    return await submitted(client, task_id, watch=args.watch, wait_s=args.wait_s, as_json=args.json)


async def _delete(client: CamTasksClient, args: argparse.Namespace) -> int:
    await client.delete_schedule(args.name)
    if args.json:
        print_json({"name": args.name, "deleted": True})
    else:
        print(f"deleted {args.name}", flush=True)
    return ExitCode.OK


def _fields(parser: argparse.ArgumentParser, *, creating: bool) -> None:
    if creating:
        parser.add_argument("expression", help="cron: five fields, or @hourly, @daily …")
        parser.add_argument("type", help="the task type it fires")
        parser.add_argument("params", nargs="?", help="JSON object, @file.json, or - (stdin)")
    else:
        parser.add_argument("--expression", help="new cron expression")
        parser.add_argument("--type", help="new task type")
        parser.add_argument(
            "--params", help="new params (replace the old ones whole): JSON, @file.json, or -"
        )
    parser.add_argument("--timezone", help="IANA zone the expression is read in (default UTC)")
    parser.add_argument("--priority", help="low | normal | high | urgent (or 0-3)")


def add_schedule_commands(commands: Any, epilog: str) -> None:
    """Add ``schedules`` and its sub-commands to the ``commands`` sub-parsers."""
    formatter = argparse.RawDescriptionHelpFormatter
    common = client_options()
    group = commands.add_parser(
        "schedules",
        help="manage schedules (admin)",
        description="Schedules fire tasks on a cron timetable; managing them takes an admin.",
        epilog=epilog,
        formatter_class=formatter,
    )
    actions = group.add_subparsers(dest="schedule_command", required=True, metavar="ACTION")

    def add(name: str, text: str, action: Any, *parents: argparse.ArgumentParser) -> Any:
        parser = actions.add_parser(
            name, parents=[common, *parents], help=text, epilog=epilog, formatter_class=formatter
        )
        parser.set_defaults(handler=run_client, action=action)
        return parser

    listing = add("list", "list schedules by name", _list)
    state = listing.add_mutually_exclusive_group()
    state.add_argument(
        "--active", dest="active", action="store_const", const=True, help="only schedules that fire"
    )
    state.add_argument(
        "--paused", dest="active", action="store_const", const=False, help="only paused schedules"
    )
    listing.add_argument("--offset", type=int, default=0)
    listing.add_argument("--limit", type=int, default=50)

    add("show", "show one schedule", _get).add_argument("name")

    create = add("create", "create a schedule", _create)
    create.add_argument("name")
    _fields(create, creating=True)
    create.add_argument("--paused", action="store_true", help="create it paused")

    update = add("update", "change a schedule's given fields", _update)
    update.add_argument("name")
    _fields(update, creating=False)

    add("pause", "stop firing", _pause).add_argument("name")
    add("resume", "fire again from the next time after now", _resume).add_argument("name")
    run = add("run", "fire one task now; prints its id", _run, follow_options())
    run.add_argument("name")
    run.add_argument("--watch", action="store_true", help="then watch the task (as `watch`)")
    add("delete", "delete a schedule (the tasks it fired stay)", _delete).add_argument("name")
