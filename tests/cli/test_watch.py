"""``cam-tasks watch``: a live line on a terminal (a real pty), a plain line per change through a
pipe, a JSON object per change with ``--json``; a final line and an exit status that tell how
the task ended."""

from __future__ import annotations

import asyncio
import io
import json
import os
import pty
import re
import signal

from cam_tasks.cli.exits import EXIT_INTERRUPTED, EXIT_TASK_CANCELLED, EXIT_TASK_FAILED
from cam_tasks.cli.watch import LiveLine
from tests.cli.support import Service, read_until
from tests.support.waiting import eventually

# What the live line writes before each drawing: back to column 0, erase the line.
REDRAW = "\r\x1b[2K"


class Terminal:
    """The master side of a pty: collects what the command writes to its terminal."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.data = bytearray()
        self.closed = asyncio.Event()
        asyncio.get_running_loop().add_reader(master, self._read)

    def _read(self) -> None:
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: every writer closed its side
            chunk = b""
        if chunk:
            self.data += chunk
        else:
            asyncio.get_running_loop().remove_reader(self.master)
            self.closed.set()

    @property
    def text(self) -> str:
        return self.data.decode(errors="replace")

    async def wait_for(self, needle: str) -> None:
        async def current() -> str:
            return self.text

        await eventually(current, lambda text: needle in text, timeout_s=20)

    def close(self) -> None:
        if not self.closed.is_set():
            asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)


async def test_on_a_terminal_watch_redraws_one_line_then_prints_the_outcome(
    service: Service,
) -> None:
    task_id = await service.submit(hold=True)
    master, slave = pty.openpty()
    terminal = Terminal(master)
    try:
        process = await service.start(
            "watch", task_id, env=service.env(COLUMNS="100"), stdout=slave
        )
        os.close(slave)
        await terminal.wait_for("halfway there")
        service.executor.gate.set()
        assert await asyncio.wait_for(process.wait(), 30) == 0
        await asyncio.wait_for(terminal.closed.wait(), 10)
    finally:
        terminal.close()

    # The tty turns each \n into \r\n: the drawings, then the outcome on a line of its own.
    assert terminal.text.endswith("\r\n")
    drawn, _, after = terminal.text.removesuffix("\r\n").rpartition("\r\n")
    frames = [frame for frame in drawn.split(REDRAW) if frame]
    assert drawn.startswith(REDRAW)
    assert all("\n" not in frame and len(frame) <= 99 for frame in frames)
    halfway = next(frame for frame in frames if "halfway there" in frame)
    assert halfway.split()[0] == "running"
    assert halfway.count("%") == 1  # the percentage once, next to its bar
    assert "50.0%" in halfway
    assert "step 1/2" in halfway
    assert re.search(r"\b\d+s elapsed\b", halfway)
    assert frames[-1].split()[0] == "completed"
    assert "100.0%" in frames[-1]
    assert re.fullmatch(r'completed in \d+\.\ds: \{"steps":2\}', after)


async def test_ctrl_c_on_a_terminal_ends_the_live_line_before_saying_so(service: Service) -> None:
    task_id = await service.submit(hold=True)
    master, slave = pty.openpty()
    terminal = Terminal(master)
    try:
        process = await service.start(
            "watch", task_id, env=service.env(COLUMNS="100"), stdout=slave
        )
        os.close(slave)
        await terminal.wait_for("halfway there")
        process.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(process.communicate(), 30)
        await asyncio.wait_for(terminal.closed.wait(), 10)
    finally:
        terminal.close()

    assert process.returncode == EXIT_INTERRUPTED
    assert err.decode() == "cam-tasks: interrupted\n"
    assert terminal.text.endswith("halfway there\r\n")  # the prompt starts on a clean line


async def test_through_a_pipe_watch_prints_a_line_per_change(service: Service) -> None:
    task_id = await service.submit(hold=True)
    process = await service.start("watch", task_id)

    seen = await read_until(process.stdout, "halfway there")
    service.executor.gate.set()
    out, err = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == 0, err.decode()
    lines = seen + out.decode().splitlines()
    assert "\x1b" not in out.decode()
    assert ["running", "50.0%", "step", "1/2", "halfway", "there"] in [
        line.split() for line in lines
    ]
    assert lines[-2].split() == ["completed", "100.0%", "step", "2/2", "all", "done"]
    assert re.fullmatch(r'completed in \d+\.\ds: \{"steps":2\}', lines[-1])


async def test_watch_exits_4_when_the_task_fails(service: Service) -> None:
    task_id = await service.submit(fail=True)

    result = await service.run("watch", task_id)

    assert result.code == EXIT_TASK_FAILED
    assert re.fullmatch(
        r"failed in \d+\.\ds: PermanentError: bad account", result.out.splitlines()[-1]
    )


async def test_watch_exits_5_when_the_task_is_cancelled(service: Service) -> None:
    task_id = await service.submit(hold=True)
    process = await service.start("watch", task_id, "--json")

    first = json.loads((await read_until(process.stdout, "halfway there"))[-1])
    await service.runtime.service.cancel(task_id)
    out, _ = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == EXIT_TASK_CANCELLED
    assert first["status"] == "running"
    assert json.loads(out.decode().splitlines()[-1])["status"] == "cancelled"


def test_the_live_line_shows_the_services_eta_until_it_has_run_out() -> None:
    screen = io.StringIO()
    live = LiveLine(screen)
    task = {"status": "running", "progress": 40.0, "duration": 20.0}

    live.update({**task, "eta_s": 30.0})
    live.update({**task, "eta_s": 0.2})  # the estimate ran out: the task is late
    live.update({**task, "eta_s": None})

    first, late, unknown = screen.getvalue().split(REDRAW)[1:]
    assert re.search(r"\b20s elapsed  ~30s left\b", first)
    assert "left" not in late
    assert "left" not in unknown
