"""The benchmark suite still runs: ``python -m benchmarks --smoke`` (tiny sizes, every group).

Only that it runs and prints every row is checked, never a figure: timings belong to the
benchmarks themselves (docs/performance.md), not to the tests.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.common import ROWS_PREFIX
from benchmarks.peers import INSTALL_HINT

ROOT = Path(__file__).resolve().parent.parent
PEERS = ("taskiq", "aiojobs")
#: Runs the B1/B2 group as if the ``bench`` extra were not installed: a ``None`` in
#: ``sys.modules`` makes Python's own import of the name fail.
WITHOUT_PEERS = (
    "import runpy, sys\n"
    + "".join(f"sys.modules[{name!r}] = None\n" for name in PEERS)
    + "sys.argv = ['benchmarks.inprocess', '--smoke']\n"
    + "runpy.run_module('benchmarks.inprocess', run_name='__main__', alter_sys=True)\n"
)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


@pytest.mark.timeout(300)
def test_the_benchmark_command_runs_every_group_and_prints_one_table() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    table = [_cells(line) for line in completed.stdout.splitlines() if line.startswith("| B")]
    assert {cells[0] for cells in table} == {f"B{n}" for n in range(1, 9)}
    assert "(group failed)" not in completed.stdout, completed.stdout[-3000:]
    # Every B1/B2 figure is printed against each peer and the raw queue, judged against taskiq.
    compared = [cells for cells in table if cells[0] in ("B1", "B2")]
    for versus in (*PEERS, "asyncio.Queue"):
        assert any(cells[1].endswith(f", vs {versus}") for cells in compared), versus
    installed = all(importlib.util.find_spec(name) is not None for name in PEERS)
    for cells in compared:
        name = cells[1].rsplit(", vs ", 1)[1]
        if name == "taskiq":
            assert cells[5].endswith("x taskiq"), cells
        if name in PEERS and not installed:
            assert cells[3] == f"skipped: {INSTALL_HINT}", cells
        else:
            assert f"({name}" in cells[3], cells  # the peer's figure, named
            assert cells[4] != "-", cells  # and cam_tasks' ratio to it


@pytest.mark.timeout(120)
def test_without_the_bench_extra_the_peer_rows_say_how_to_install_it() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", WITHOUT_PEERS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    (line,) = [line for line in completed.stdout.splitlines() if line.startswith(ROWS_PREFIX)]
    rows = json.loads(line[len(ROWS_PREFIX) :])
    versus = {row["what"].rsplit(", vs ", 1)[1] for row in rows}
    assert versus == {*PEERS, "asyncio.Queue"}
    for row in rows:
        assert row["value"] is not None  # cam_tasks' own figure is still measured
        if row["what"].endswith(PEERS):
            assert row["ref_what"] == f"skipped: {INSTALL_HINT}"
            assert row["reference"] is None
            assert row["met"] is None
        else:
            assert row["reference"] is not None
