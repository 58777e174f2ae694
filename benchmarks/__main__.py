"""``python -m benchmarks``: run every benchmark group and print one table.

Each group runs in its own process; the wire rows use ``MONGODB_URI`` when set, else a
SecantusDB started here on a free loopback port (``$SECANTUSD``, ``.venv-secantus``,
``/tmp/secvenv``) and stopped by its PID at the end; without either they are skipped.

B4 compares with the code before the performance work (``--baseline-ref``, default
``benchmarks.baseline.BASELINE_REF``), taken out of git into a temporary directory and run
against the same wire server (see ``benchmarks.baseline``).

``--smoke`` shrinks every size so the whole run takes seconds (it proves the suite runs; its
figures mean nothing) and never starts a wire server itself. Nothing here ever exits non-zero
because a target is missed: benchmarks print figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.baseline import BASELINE_REF, ENV_REF
from benchmarks.common import ROWS_PREFIX
from benchmarks.wire_server import wire_server

ROOT = Path(__file__).resolve().parent.parent

#: (module, row ids it produces, needs the wire server)
GROUPS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("benchmarks.inprocess", ("B1", "B2"), False),
    ("benchmarks.wire", ("B3", "B4"), True),
    ("benchmarks.web_api", ("B5",), False),
    ("benchmarks.scale", ("B6",), False),
    ("benchmarks.assets", ("B7",), True),
    ("benchmarks.claims", ("B8",), True),
)


def _run_group(module: str, smoke: bool, wire_uri: str | None) -> list[dict[str, Any]]:
    command = [sys.executable, "-m", module]
    if smoke:
        command.append("--smoke")
    if wire_uri:
        command += ["--wire-uri", wire_uri]
    started = time.perf_counter()
    completed = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=3600, check=False
    )
    elapsed = time.perf_counter() - started
    print(f"  {module}: {elapsed:.1f} s", file=sys.stderr, flush=True)
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(ROWS_PREFIX):
            rows: list[dict[str, Any]] = json.loads(line[len(ROWS_PREFIX) :])
            return rows
    tail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
    return [
        {
            "id": module.rsplit(".", 1)[-1],
            "what": "(group failed)",
            "value": None,
            "unit": "",
            "note": f"exit {completed.returncode}: " + " | ".join(tail),
        }
    ]


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def _ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 0.1 else f"{value:.2f}"


def _met(row: dict[str, Any]) -> str:
    met = row.get("met")
    return "-" if met is None else ("yes" if met else "NO")


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    return (
        f"{_cpu()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def _load() -> str:
    """The 1-minute load average: other work on the machine moves every absolute figure."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def _link(rows: list[dict[str, Any]]) -> None:
    """Fill rows whose reference is another group's figure (``ref_key``)."""
    by_key = {row["key"]: row for row in rows if row.get("key")}
    for row in rows:
        source = by_key.get(row.get("ref_key") or "")
        if source is not None and source.get("value") and row.get("value") is not None:
            row["reference"] = source["value"]
            row["ratio"] = row["value"] / source["value"]


def table(rows: list[dict[str, Any]]) -> str:
    header = ["#", "benchmark", "figure", "reference (same run)", "ratio", "target", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes: list[str] = []
    for row in rows:
        reference = "-"
        if row.get("reference") is not None:
            reference = _number(row["reference"], row.get("unit", ""))
            if row.get("ref_what"):
                reference += f" ({row['ref_what']})"
        elif row.get("ref_what"):
            reference = row["ref_what"]
        what = row["what"]
        if row.get("note"):
            notes.append(row["note"])
            what += f" [{len(notes)}]"
        cells = [
            row["id"],
            what,
            _number(row.get("value"), row.get("unit", "")) if row.get("value") is not None else "-",
            reference,
            _ratio(row.get("ratio")),
            row.get("target") or "-",
            _met(row),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"[{index}] {note}" for index, note in enumerate(notes, start=1)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument(
        "--only", default="", help="comma-separated row ids to run (B1,B5…); default all"
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON to this file")
    parser.add_argument(
        "--baseline-ref",
        help=f"the commit B4 compares with (default ${ENV_REF}, else {BASELINE_REF})",
    )
    args = parser.parse_args()
    if args.baseline_ref:
        os.environ[ENV_REF] = args.baseline_ref  # read by the wire group's process
    wanted = {part.strip().upper() for part in args.only.split(",") if part.strip()}
    groups = [g for g in GROUPS if not wanted or wanted & set(g[1])]
    needs_wire = any(g[2] for g in groups)
    started = time.perf_counter()
    load_before = _load()
    rows: list[dict[str, Any]] = []
    print(f"cam_tasks benchmarks on {machine()}", file=sys.stderr, flush=True)
    with wire_server(start=needs_wire and not args.smoke) as (wire_uri, wire_what):
        for module, _, wire in groups:
            rows += _run_group(module, args.smoke, wire_uri if wire else None)
    _link(rows)
    if wanted:
        rows = [row for row in rows if row["id"] in wanted or row["what"] == "(group failed)"]
    load_tool = "wrk" if shutil.which("wrk") else "aiohttp client"
    smoke = " (smoke: sizes shrunk, figures meaningless)" if args.smoke else ""
    print(
        f"\ncam_tasks benchmarks{smoke}"
        f"\nmachine: {machine()}\nwire server: {wire_what}; HTTP load: {load_tool}; "
        f"total {time.perf_counter() - started:.0f} s; load average {load_before} at the "
        f"start, {_load()} at the end\n"
    )
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
