"""The exit statuses of ``cam-tasks``, written down once: the code, the ``--help`` epilog and
docs/operations.md (a test holds the page to this table) all read :data:`EXIT_MEANINGS`."""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Final

from cam_tasks.domain import CamTasksError

__all__ = [
    "EXIT_API_ERROR",
    "EXIT_BROKEN_PIPE",
    "EXIT_INTERRUPTED",
    "EXIT_MEANINGS",
    "EXIT_TASK_CANCELLED",
    "EXIT_TASK_FAILED",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "ExitCode",
    "UsageError",
    "exit_codes_epilog",
]


class ExitCode(IntEnum):
    """How a ``cam-tasks`` command ended."""

    OK = 0
    API_ERROR = 1
    USAGE = 2
    UNREACHABLE = 3
    TASK_FAILED = 4
    TASK_CANCELLED = 5
    INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C
    BROKEN_PIPE = 141  # 128 + SIGPIPE, what `cat` or `git` end with when `| head` stops reading


EXIT_API_ERROR: Final = ExitCode.API_ERROR
EXIT_USAGE: Final = ExitCode.USAGE
EXIT_UNREACHABLE: Final = ExitCode.UNREACHABLE
EXIT_TASK_FAILED: Final = ExitCode.TASK_FAILED
EXIT_TASK_CANCELLED: Final = ExitCode.TASK_CANCELLED
EXIT_INTERRUPTED: Final = ExitCode.INTERRUPTED
EXIT_BROKEN_PIPE: Final = ExitCode.BROKEN_PIPE

#: What each exit status means, for people.
EXIT_MEANINGS: Final[Mapping[ExitCode, str]] = {
    ExitCode.OK: "done (`watch`: the task completed)",
    ExitCode.API_ERROR: "the API answered an error: its message and details are printed on stderr",
    ExitCode.USAGE: "bad arguments (unreadable or invalid params JSON, an option the type does "
    "not take, an invalid --url)",
    ExitCode.UNREACHABLE: "the service could not be reached (refused, timed out, no usable answer)",
    ExitCode.TASK_FAILED: "`watch`: the task failed",
    ExitCode.TASK_CANCELLED: "`watch`: the task was cancelled",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C); a watched task keeps running",
    ExitCode.BROKEN_PIPE: "stdout was closed early (a reader such as `head -1` stopped); "
    "nothing more is printed",
}


class UsageError(CamTasksError):
    """Arguments the command cannot use; found before the service is called."""


def exit_codes_epilog() -> str:
    """The exit statuses as the ``--help`` epilog shows them."""
    lines = ["exit status:"]
    lines += [f"  {code.value:>3}  {text.replace('`', '')}" for code, text in EXIT_MEANINGS.items()]
    return "\n".join(lines)
