"""How ``cam-tasks`` ends when something expected goes wrong: a documented exit status and at
most one message on stderr, never a traceback. Real processes, real pipes, real signals."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys

from cam_tasks.cli.exits import (
    EXIT_API_ERROR,
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_MEANINGS,
    EXIT_USAGE,
)
from tests.cli.support import ROOT, Service, read_until


async def _into_a_closed_pipe(service: Service, *args: str) -> tuple[int, str]:
    """Run ``cam-tasks *args`` with stdout a pipe whose reader is already gone (what ``| head``
    leaves once it has its line): exit status and stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        process = await service.start(*args, stdout=write_end)
    finally:
        os.close(write_end)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode, err.decode()


async def test_a_reader_that_stops_early_ends_the_command_quietly(service: Service) -> None:
    task_id = await service.submit()

    for args in (("status", task_id), ("list",), ("list", "--json")):
        code, err = await _into_a_closed_pipe(service, *args)

        assert code == EXIT_BROKEN_PIPE, err
        assert err == ""


def test_help_piped_into_head_prints_its_first_line_and_no_traceback() -> None:
    # The pipeline as users write it, with bash's pipefail; --help needs no service.
    script = f"{sys.executable} -m cam_tasks.cli --help | head -1"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script], capture_output=True, text=True, timeout=30
    )

    assert result.stdout.startswith("usage: cam-tasks")
    assert result.stdout.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert "BrokenPipeError" not in result.stderr


async def test_ctrl_c_during_watch_ends_with_one_line_and_130(service: Service) -> None:
    task_id = await service.submit(hold=True)
    process = await service.start("watch", task_id)
    await read_until(process.stdout, "halfway there")

    process.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == EXIT_INTERRUPTED
    assert err.decode() == "cam-tasks: interrupted\n"
    assert (await service.runtime.service.get(task_id)).status.value == "running"  # untouched


async def test_an_api_error_is_one_line_with_its_details(service: Service) -> None:
    result = await service.run("status", "no-such-task")

    assert result.code == EXIT_API_ERROR
    message, *details = result.err.splitlines()
    assert message == "cam-tasks: task not found (HTTP 404, not_found)"
    assert details == ['  {"task_id":"no-such-task"}']


async def test_a_url_that_is_not_http_is_a_usage_error(service: Service) -> None:
    result = await service.run("list", "--url", "127.0.0.1:8001")

    assert result.code == EXIT_USAGE
    assert "argument --url: not an http(s) URL" in result.err
    assert "Traceback" not in result.err


def test_help_and_the_operations_page_list_every_exit_status() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "cam_tasks.cli", "watch", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    page = (ROOT / "docs" / "operations.md").read_text()
    documented = dict(re.findall(r"^\| (\d+) \| (.+) \|$", page, re.MULTILINE))

    for code, meaning in EXIT_MEANINGS.items():
        assert re.search(rf"^\s*{code.value}  {re.escape(meaning.replace('`', ''))}", shown, re.M)
        assert documented.get(str(code.value)) == meaning
    assert len(documented) == len(EXIT_MEANINGS)
