"""Following a task to its end (``watch``, ``submit --watch``): a live line on a terminal,
a plain line per change otherwise, a JSON object per change with ``--json``; then a final line
and an exit status that tells how the task ended."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections.abc import Mapping
from typing import Any, Final, TextIO

import orjson

from cam_tasks.cli.exits import ExitCode
from cam_tasks.cli.render import final_line, live_line, plain_line
from cam_tasks.cli.session import print_json
from cam_tasks.client import CamTasksClient

__all__ = ["LiveLine", "follow"]

#: How often a live line is redrawn without news, so elapsed time and ETA keep moving.
REDRAW_INTERVAL_S: Final = 1.0
# Back to the start of the line and erase it: the next draw replaces the last one.
_REWRITE: Final = "\r\x1b[2K"


class LiveLine:
    """The one line a terminal shows for a running task, redrawn in place.

    Elapsed time and ETA come from the last view of the task (``duration``, ``eta_s``) moved on
    by the local time since it arrived, so the line keeps counting between answers. An ETA that
    has counted down below a second is left out until the service sends a new one: the task is
    late, and "~0s left" would claim otherwise.
    """

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._task: Mapping[str, Any] | None = None
        self._seen_at = 0.0
        self.drawn = False

    def update(self, task: Mapping[str, Any]) -> None:
        self._task, self._seen_at = task, time.monotonic()
        self.draw()

    def draw(self) -> None:
        task = self._task
        if task is None:
            return
        since_s = time.monotonic() - self._seen_at if task.get("status") == "running" else 0.0
        duration, eta = task.get("duration"), task.get("eta_s")
        left_s = None if eta is None else float(eta) - since_s
        line = live_line(
            task,
            elapsed_s=None if duration is None else float(duration) + since_s,
            eta_s=left_s if left_s is not None and left_s >= 1 else None,
            width=shutil.get_terminal_size().columns - 1,
        )
        self._out.write(_REWRITE + line)
        self._out.flush()
        self.drawn = True

    def end(self) -> None:
        """Leave the last drawing on screen and move below it."""
        if self.drawn:
            self._out.write("\n")
            self._out.flush()
            self.drawn = False

    async def keep_drawing(self) -> None:
        while True:
            await asyncio.sleep(REDRAW_INTERVAL_S)
            self.draw()


def _exit_code(task: Mapping[str, Any]) -> ExitCode:
    status = task.get("status")
    if status == "failed":
        return ExitCode.TASK_FAILED
    return ExitCode.TASK_CANCELLED if status == "cancelled" else ExitCode.OK


async def submitted(
    client: CamTasksClient, task_id: str, *, watch: bool, wait_s: float, as_json: bool
) -> ExitCode:
    """Print the id of a task just submitted (an object with ``--json``), then follow it to
    its end when ``watch`` (``submit --watch``, ``schedules run --watch``)."""
    if as_json:
        print_json({"task_id": task_id})
    else:
        print(task_id, flush=True)
    if not watch:
        return ExitCode.OK
    return await follow(client, task_id, wait_s=wait_s, as_json=as_json)


async def follow(
    client: CamTasksClient,
    task_id: str,
    *,
    wait_s: float,
    as_json: bool,
    out: TextIO | None = None,
) -> ExitCode:
    """Show ``task_id`` until it completes, fails or is cancelled; its exit code says which.

    On a terminal (and without ``as_json``) one line is redrawn in place; it is ended (a
    newline) however the watch stops, Ctrl-C included, so the shell prompt starts clean.
    """
    out = out or sys.stdout
    task: Mapping[str, Any] = {}
    if as_json or not out.isatty():
        async for task in client.watch(task_id, wait_s=wait_s):
            line = orjson.dumps(task).decode() if as_json else plain_line(task)
            print(line, file=out, flush=True)
    else:
        live = LiveLine(out)
        ticker = asyncio.create_task(live.keep_drawing())
        try:
            async for task in client.watch(task_id, wait_s=wait_s):
                live.update(task)
        finally:
            ticker.cancel()
            # Not a TaskGroup: it would wrap the client's errors in an ExceptionGroup. wait()
            # does not raise the ticker's cancellation, and still raises our own.
            await asyncio.wait({ticker})
            live.end()
    if not as_json and task:
        print(final_line(task), file=out, flush=True)
    return _exit_code(task)
