"""Running the docs' shell (``bash``/``sh``) blocks: command by command, for real.

A block is split into commands (a line, with its ``\\`` continuations and multi-line quotes);
the comment lines right under a command (no blank line between) are its *notes*, usually the
output it gives. Each command falls in one category (:func:`category`):

- **live**: run by ``bash -eu -o pipefail`` in the page's working directory (a temporary one,
  shared by the page's blocks), against the live service (:mod:`tests.docs.service`), with the
  bin directory of the tests' Python (``.venv/bin``) first on ``PATH``, so ``cam-tasks`` is this
  checkout's. It must exit 0. A ``curl`` must print a JSON envelope with ``code`` 0. When its
  notes show JSON (``# {...}`` or ``# 201 {...}``), every key they name must occur in the real
  output.
- **environment**: ``export NAME=value ...`` sets variables for the page's later commands.
- **checked, not run**: commands that cannot run in a test, verified as far as they can be:
  ``docker compose ...`` (no Docker engine here: ``docker-compose.yml`` parses, builds its
  instances, and publishes every ``localhost`` port the block's other commands use),
  ``./scripts/NAME`` (exists, is executable, ``bash -n`` accepts it; ``scripts/test`` runs this
  very suite and ``scripts/serve`` installs into ``.venv``), and ``.venv/bin/python -m benchmarks
  ...`` (minutes long; every option it passes is one ``--help`` lists;
  ``tests/test_benchmarks_smoke.py`` runs the suite itself).

Before a live or environment command runs, these placeholders are replaced:

- ``localhost:8001`` / ``127.0.0.1:8001``: the first instance; ``...:8002``: the second;
- ``<id>``, and an id shortened to four hex digits and an ellipsis (``6f1c…``, ``0195…``): the
  id of the task most recently submitted by an earlier command of the page, read from a
  ``"task_id"`` field of its output or from an id alone on its first line (what
  ``cam-tasks submit`` prints);
- ``<token>``: the test principal's bearer token.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.docs.blocks import ROOT, Block
from tests.docs.service import TOKEN, Service

COMMAND_TIMEOUT_S = 30.0
_TASK_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_SHORT_ID = re.compile(r"(?<![\w-])[0-9a-f]{4}…")
_JSON_TASK_ID = re.compile(r'"task_id"\s*:\s*"([^"]+)"')
_FIRST_LINE_ID = re.compile(rf"\A({_TASK_ID})\s*$", re.MULTILINE)
_NOTE_JSON = re.compile(r"^(?:\d{3}\s+)?\{")
_NOTE_KEY = re.compile(r'"(\w+)"\s*:')


class Category(Enum):
    LIVE = "live"
    ENVIRONMENT = "environment"
    COMPOSE = "docker compose: checked, not run"
    SCRIPT = "project script: checked, not run"
    BENCHMARKS = "benchmark suite: checked, not run"


@dataclass
class Command:
    line: int  # line of the page where it starts
    text: str
    notes: list[str] = field(default_factory=list)

    @property
    def words(self) -> list[str]:
        return shlex.split(self.text, comments=True)


def _complete(text: str) -> bool:
    if text.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(text, comments=True)
    except ValueError:  # an open quote: the command goes on
        return False
    return True


def commands_of(block: Block) -> list[Command]:
    commands: list[Command] = []
    pending: list[str] = []
    start = 0
    last: Command | None = None
    for offset, raw in enumerate(block.code.splitlines()):
        number = block.line + 1 + offset
        stripped = raw.strip()
        if pending:
            pending.append(raw)
        elif not stripped:
            last = None
            continue
        elif stripped.startswith("#"):
            if last is not None:
                last.notes.append(stripped.removeprefix("#").strip())
            continue
        else:
            pending, start = [raw], number
        text = "\n".join(pending)
        if _complete(text):
            last = Command(start, text)
            commands.append(last)
            pending = []
    assert not pending, f"{block.where}: unfinished command {pending!r}"
    return commands


def category(command: Command) -> Category:
    words = command.words
    if words[:1] == ["export"]:
        return Category.ENVIRONMENT
    if words[:2] == ["docker", "compose"]:
        return Category.COMPOSE
    if words and words[0].startswith("./scripts/"):
        return Category.SCRIPT
    if words[:3] == [".venv/bin/python", "-m", "benchmarks"]:
        return Category.BENCHMARKS
    return Category.LIVE


# -- checked, not run --------------------------------------------------------------------------


def check_compose(command: Command, block: Block) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services: dict[str, Any] = compose["services"]
    published = {
        int(str(port).split(":")[0])
        for service in services.values()
        for port in service.get("ports", [])
    }
    if "--build" in command.words:
        assert all("build" in s for s in services.values() if s.get("ports")), services
    used = {int(port) for port in re.findall(r"(?:localhost|127\.0\.0\.1):(\d+)", block.code)}
    assert used <= published, f"the block uses ports {used}, compose publishes {published}"


def check_script(command: Command) -> None:
    script = ROOT / command.words[0]
    assert script.is_file(), f"{script} does not exist"
    assert os.access(script, os.X_OK), f"{script} is not executable"
    syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr


@cache
def _benchmarks_help() -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=True,
    )
    return completed.stdout


def check_benchmarks(command: Command) -> None:
    assert (ROOT / ".venv" / "bin" / "python").exists()
    for option in (word for word in command.words if word.startswith("-")):
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", _benchmarks_help()), (
            f"`python -m benchmarks --help` does not list {option}"
        )


# -- live ----------------------------------------------------------------------------------------


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


class Shell:
    """The shell state of one page: its working directory, exported variables, the last
    submitted task's id."""

    def __init__(self, service: Service, workdir: Path) -> None:
        self.service = service
        self.workdir = workdir
        self.exported: dict[str, str] = {}
        self.task_id: str | None = None

    def substitute(self, text: str) -> str:
        for doc_port, host_port in self.service.port_map().items():
            for host in ("localhost", "127.0.0.1"):
                text = text.replace(f"{host}:{doc_port}", host_port)
        text = text.replace("<token>", TOKEN)
        if "<id>" in text or _SHORT_ID.search(text):
            assert self.task_id is not None, "a task id placeholder before any task was submitted"
            text = _SHORT_ID.sub(self.task_id, text.replace("<id>", self.task_id))
        return text

    def environment(self) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("CAM_TASKS_") and "proxy" not in name.lower()
        }
        # the environment running the tests (.venv) comes first: `cam-tasks` is this checkout's
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        env.update(self.exported)
        return env

    async def run_block(self, block: Block) -> None:
        for command in commands_of(block):
            try:
                await self.run(command, block)
            except BaseException as exc:
                exc.add_note(f"in the command at {block.page.name}:{command.line}: {command.text}")
                raise

    async def run(self, command: Command, block: Block) -> None:
        kind = category(command)
        if kind is Category.COMPOSE:
            check_compose(command, block)
        elif kind is Category.SCRIPT:
            check_script(command)
        elif kind is Category.BENCHMARKS:
            check_benchmarks(command)
        elif kind is Category.ENVIRONMENT:
            for assignment in shlex.split(self.substitute(command.text), comments=True)[1:]:
                name, equals, value = assignment.partition("=")
                assert equals, f"export without a value: {assignment}"
                self.exported[name] = value
        else:
            output = await self._execute(self.substitute(command.text))
            self._check_output(command, output)
            self._capture(output)

    async def _execute(self, text: str) -> str:
        process = await asyncio.create_subprocess_exec(
            "bash",
            "-eu",
            "-o",
            "pipefail",
            "-c",
            text,
            cwd=self.workdir,
            env=self.environment(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT_S):
                stdout, stderr = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(f"still running after {COMMAND_TIMEOUT_S} s: {text}") from None
        out, err = stdout.decode(), stderr.decode()
        assert process.returncode == 0, f"exit {process.returncode}\n{out}\n{err}"
        return out

    def _check_output(self, command: Command, output: str) -> None:
        parsed: Any = None
        if command.words[0] == "curl":
            parsed = json.loads(output)
            assert isinstance(parsed, dict), output
            assert parsed.get("code") == 0, output
        shown = [note for note in command.notes if note]
        if shown and _NOTE_JSON.match(shown[0]):
            if parsed is None:
                parsed = json.loads(output)
            missing = set(_NOTE_KEY.findall("\n".join(shown))) - set(_keys(parsed))
            assert not missing, f"the output shown names keys the real one lacks: {missing}"

    def _capture(self, output: str) -> None:
        found = _JSON_TASK_ID.search(output) or _FIRST_LINE_ID.match(output)
        if found is not None:
            self.task_id = found[1]
