"""The benchmark suite still runs: ``python -m benchmarks --smoke`` (tiny sizes, every group).

Only that it runs and prints every row is checked, never a figure: timings belong to the
benchmarks themselves (docs/performance.md), not to the tests.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
    table = [line for line in completed.stdout.splitlines() if line.startswith("| B")]
    assert {line.split("|")[1].strip() for line in table} == {f"B{n}" for n in range(1, 9)}
    assert "(group failed)" not in completed.stdout, completed.stdout[-3000:]
