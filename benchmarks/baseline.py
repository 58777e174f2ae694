"""B4's baseline: the code before the performance work, measured in the same run.

The ``cam_tasks`` package of ``BASELINE_REF`` is taken out of git (``git archive``) into a
temporary directory. A subprocess then runs this tree's wire measurement
(:func:`benchmarks.wire.throughput`) with that directory first on its path, so ``import
cam_tasks`` is the old code while the harness is today's; it reports which package it
imported, and a figure from any other is refused. The directory is removed afterwards.

``BASELINE_REF`` can be overridden with ``$BENCH_BASELINE_REF`` (``python -m benchmarks
--baseline-ref REF`` sets it). Without git, or outside a checkout that has the commit (an
sdist, a shallow clone), :class:`BaselineUnavailable` says why and B4 prints it.

``python -m benchmarks.baseline --wire-uri URI --n N [--batched]`` is the subprocess's side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: main's HEAD before the performance work of issue #15.
BASELINE_REF = "4634332"
ENV_REF = "BENCH_BASELINE_REF"
RESULT_PREFIX = "BENCH-BASELINE "
#: One subprocess run may take this long (a backlog of 1,000 on a slow server takes about 30 s).
TIMEOUT_S = 1800


class BaselineUnavailable(Exception):
    """The baseline cannot be measured; the message says why (printed in its row)."""


def baseline_ref() -> str:
    """The commit measured as "before": ``$BENCH_BASELINE_REF``, else :data:`BASELINE_REF`."""
    return os.environ.get(ENV_REF) or BASELINE_REF


def _git(*args: str) -> subprocess.CompletedProcess[bytes]:
    git = shutil.which("git")
    if git is None:
        raise BaselineUnavailable("git is not installed")
    return subprocess.run([git, "-C", str(ROOT), *args], capture_output=True, check=False)


@contextlib.contextmanager
def old_package(ref: str) -> Iterator[Path]:
    """A temporary directory holding ``cam_tasks`` as it was at ``ref``; removed on exit.

    Raises :class:`BaselineUnavailable` when git or the commit is not there.
    """
    resolved = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if resolved.returncode != 0:
        raise BaselineUnavailable(f"commit {ref} not found (not a git checkout, or a shallow one)")
    commit = resolved.stdout.decode().strip()
    archive = _git("archive", "--format=tar", commit, "cam_tasks")
    if archive.returncode != 0:
        raise BaselineUnavailable(f"git archive {ref} failed: {archive.stderr.decode().strip()}")
    with tempfile.TemporaryDirectory(prefix="cam-tasks-baseline-") as directory:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(directory, filter="data")
        yield Path(directory)


def measure_old(tree: Path, uri: str, n: int, *, batched: bool) -> float:
    """Tasks/s of :func:`benchmarks.wire.throughput` run by the ``cam_tasks`` in ``tree``.

    Raises :class:`BaselineUnavailable` when the subprocess fails or imported another package.
    """
    # cwd and PYTHONPATH put `tree` (which holds only cam_tasks) before this checkout, whose
    # benchmarks package comes next; the editable install's finder comes after both.
    path = [str(tree), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    command = [sys.executable, "-m", "benchmarks.baseline", "--wire-uri", uri, "--n", str(n)]
    if batched:
        command.append("--batched")
    completed = subprocess.run(
        command,
        cwd=tree,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(path)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
            imported = Path(result["cam_tasks"]).resolve()
            if not imported.is_relative_to(tree.resolve()):
                raise BaselineUnavailable(f"the baseline run imported {imported}, not the old code")
            rate: float = result["rate"]
            return rate
    tail = " | ".join((completed.stderr or completed.stdout).strip().splitlines()[-3:])
    raise BaselineUnavailable(f"baseline run failed (exit {completed.returncode}): {tail}")


def main() -> int:
    parser = argparse.ArgumentParser(description="one baseline wire run (see module docstring)")
    parser.add_argument("--wire-uri", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--batched", action="store_true")
    args = parser.parse_args()
    logging.getLogger("cam_tasks").setLevel(logging.ERROR)  # as benchmarks.common.run does

    import cam_tasks
    from benchmarks.wire import throughput

    rate, _ = asyncio.run(throughput(args.wire_uri, args.n, batched=args.batched))
    print(RESULT_PREFIX + json.dumps({"rate": rate, "cam_tasks": cam_tasks.__file__}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
