"""cam-tasks: run a cam_tasks service, and drive one over its HTTP API."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from cam_tasks import __version__
from cam_tasks.cli.bulk import add_queue_commands
from cam_tasks.cli.commands import add_task_commands
from cam_tasks.cli.exits import ExitCode, exit_codes_epilog
from cam_tasks.cli.schedules import add_schedule_commands
from cam_tasks.cli.serve import add_serve_commands
from cam_tasks.cli.worker import add_worker_command
from cam_tasks.domain import CamTasksError

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The ``cam-tasks`` argument parser: every command, each with its handler."""
    epilog = exit_codes_epilog()
    top = argparse.ArgumentParser(
        prog="cam-tasks",
        description=__doc__,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"cam-tasks {__version__}")
    commands = top.add_subparsers(dest="command", required=True)
    add_serve_commands(commands)
    add_worker_command(commands)
    add_task_commands(commands, epilog)
    add_schedule_commands(commands, epilog)
    add_queue_commands(commands, epilog)
    return top


def _stdout_gone() -> int:
    # Whoever read stdout stopped (`| head -1`): the rest of the output has nowhere to go, which
    # is what the reader wanted. Point stdout at /dev/null so that the interpreter's final flush
    # cannot fail again (and print "Exception ignored ..." on stderr), and end quietly, as a
    # command killed by SIGPIPE would.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return ExitCode.BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cam-tasks`` with ``argv`` (default: the process's arguments); returns the exit
    status (see :data:`~cam_tasks.cli.exits.EXIT_MEANINGS`). Expected endings (an API error,
    an unreachable service, bad arguments, Ctrl-C, a closed stdout) print at most one message
    on stderr and never a traceback."""
    try:
        args = parser().parse_args(argv)
        try:
            code = int(args.handler(args))
        except CamTasksError as exc:  # e.g. an invalid settings file of `serve`
            print(f"cam-tasks: {exc}", file=sys.stderr)
            code = ExitCode.USAGE
        # Flushed here, not at exit, so that a closed pipe is seen while it can be handled.
        sys.stdout.flush()
    except BrokenPipeError:
        return _stdout_gone()
    except KeyboardInterrupt:
        print("cam-tasks: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    return code
