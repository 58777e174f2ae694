"""Text for people: tasks, schedules and statistics as the API returns them (``dict``s), turned
into lines. Pure functions of their arguments (no clock, no terminal), so tests call them as is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

__all__ = [
    "clock_text",
    "final_line",
    "live_line",
    "plain_line",
    "progress_text",
    "schedule_fields",
    "schedule_table",
    "stats_lines",
    "task_fields",
    "task_table",
]

Task = Mapping[str, Any]

BAR_WIDTH: Final = 20
_RESULT_CHARS: Final = 120  # a result summary longer than this is cut (the JSON has it all)


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}s"


def clock_text(seconds: float) -> str:
    """A span for a glance: ``7s``, ``3m05s``, ``2h04m``."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _percent(task: Task) -> float:
    return float(task.get("progress") or 0.0)


def _steps(task: Task) -> str:
    """``step 3/10 list ecs`` when the task counts steps, else ``""``. ``step_name`` is shown
    whenever the view has it (older services do not send it)."""
    total = task.get("total_steps")
    if not total:
        return ""
    text = f"step {task.get('step') or 0}/{total}"
    name = task.get("step_name")
    return f"{text} {name}" if name else text


def _attempt(task: Task) -> str:
    attempts = int(task.get("attempts") or 0)
    if attempts <= 1:
        return ""
    return f"attempt {attempts} of {int(task.get('max_retries') or 0) + 1}"


def progress_text(task: Task) -> str:
    """``50.0%  step 1/2  halfway there``: the percentage once, steps and message if any."""
    parts = [f"{_percent(task):5.1f}%", _steps(task), str(task.get("message") or "")]
    return "  ".join(part for part in parts if part)


def plain_line(task: Task) -> str:
    """One line per change when stdout is not a terminal: status, progress, attempt."""
    parts = [f"{task['status']:<9}", progress_text(task), _attempt(task)]
    return "  ".join(part for part in parts if part)


def live_line(task: Task, *, elapsed_s: float | None, eta_s: float | None, width: int) -> str:
    """The one line a terminal shows while a task runs, at most ``width`` characters:
    ``running  [########----]  42.0%  step 3/10 list  0m12s elapsed  ~20s left  message``.
    ``elapsed_s`` and ``eta_s`` are left out when None."""
    percent = _percent(task)
    filled = round(BAR_WIDTH * min(max(percent, 0.0), 100.0) / 100)
    parts = [
        f"{task['status']:<9}",
        f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}]",
        f"{percent:5.1f}%",
        _steps(task),
        _attempt(task),
        "" if elapsed_s is None else f"{clock_text(elapsed_s)} elapsed",
        "" if eta_s is None else f"~{clock_text(eta_s)} left",
        str(task.get("message") or ""),
    ]
    line = "  ".join(part for part in parts if part)
    line = " ".join(line.split("\n"))
    return line if len(line) <= width else line[: max(width - 1, 0)] + "…"


def _result_summary(result: Any) -> str:
    text = orjson.dumps(result).decode()
    return text if len(text) <= _RESULT_CHARS else text[: _RESULT_CHARS - 1] + "…"


def final_line(task: Task) -> str:
    """How the task ended, in one line: ``completed in 2.0s: {"added": 3}``, ``failed in 0.4s
    after 3 attempts: PermanentError: bad account``, ``cancelled after 5.1s``."""
    status = task["status"]
    duration = task.get("duration")
    if status == "completed":
        line = f"completed in {_seconds(duration) or '?'}"
        result = task.get("result")
        return line if result is None else f"{line}: {_result_summary(result)}"
    if status == "failed":
        attempts = int(task.get("attempts") or 0)
        line = f"failed in {_seconds(duration) or '?'}"
        if attempts > 1:
            line += f" after {attempts} attempts"
        error = task.get("error") or {}
        return f"{line}: {error.get('type')}: {error.get('message')}" if error else line
    if status == "cancelled":
        return (
            "cancelled before it started"
            if duration is None
            else f"cancelled after {duration:.1f}s"
        )
    return f"{status}{f' after {duration:.1f}s' if duration is not None else ''}"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell; the last one (free text) is not padded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        ("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)))
        + " "
        + row[-1]
        for row in rows
    ]


def task_fields(task: Task) -> list[tuple[str, str]]:
    """``status``: one task as named rows (``queue`` and ``eta`` when the view has them)."""
    status = task["status"] + (" (cancel requested)" if task.get("cancel_requested") else "")
    eta_s = task.get("eta_s")
    rows: list[tuple[str, Any]] = [
        ("id", task["id"]),
        ("type", task["type"]),
        ("queue", task.get("queue")),
        ("status", status),
        ("progress", progress_text(task)),
        ("attempts", f"{task.get('attempts')} of {int(task.get('max_retries', 0)) + 1}"),
        ("priority", task.get("priority_name", task.get("priority"))),
        ("created", task.get("created_at")),
        ("started", task.get("started_at") or "-"),
        ("completed", task.get("completed_at") or "-"),
        ("duration", _seconds(task.get("duration")) or "-"),
        ("eta", None if eta_s is None else f"~{clock_text(float(eta_s))}"),
        ("created by", task.get("created_by")),
    ]
    if task.get("error"):
        rows.append(("error", f"{task['error']['type']}: {task['error']['message']}"))
    if task.get("result") is not None:
        rows.append(("result", orjson.dumps(task["result"]).decode()))
    optional = {"queue", "eta"}
    return [(name, str(value)) for name, value in rows if value is not None or name not in optional]


def task_table(page: Mapping[str, Any]) -> list[str]:
    """``list``: one row a task, and a count."""
    rows = [("ID", "TYPE", "STATUS", "PROGRESS", "CREATED", "DURATION", "MESSAGE")]
    for task in page["tasks"]:
        rows.append(
            (
                task["id"],
                task["type"],
                task["status"],
                f"{_percent(task):.0f}%",
                str(task.get("created_at", "")),
                _seconds(task.get("duration")),
                str(task.get("message") or "")[:40],
            )
        )
    return [*_table(rows), f"{len(page['tasks'])} of {page['total']} task(s)"]


def schedule_fields(schedule: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``schedules show``: one schedule as named rows."""
    rows = [
        ("name", schedule["name"]),
        ("expression", schedule["expression"]),
        ("timezone", schedule["timezone"]),
        ("type", schedule["type"]),
        ("params", orjson.dumps(schedule.get("params") or {}).decode()),
        ("priority", schedule.get("priority_name", schedule.get("priority"))),
        ("active", "yes" if schedule.get("active") else "no (paused)"),
        ("next run", schedule.get("next_run_at") or "-"),
        ("last run", schedule.get("last_run_at") or "-"),
        ("last task", schedule.get("last_task_id") or "-"),
    ]
    if schedule.get("last_error"):
        rows.append(("last error", schedule["last_error"]))
    return [(name, str(value)) for name, value in rows]


def schedule_table(page: Mapping[str, Any]) -> list[str]:
    """``schedules list``: one row a schedule, and a count."""
    rows = [("NAME", "EXPRESSION", "TIMEZONE", "TYPE", "ACTIVE", "NEXT RUN", "LAST TASK")]
    for schedule in page["schedules"]:
        rows.append(
            (
                schedule["name"],
                schedule["expression"],
                schedule["timezone"],
                schedule["type"],
                "yes" if schedule.get("active") else "no",
                str(schedule.get("next_run_at") or "-"),
                str(schedule.get("last_task_id") or "-"),
            )
        )
    return [*_table(rows), f"{len(page['schedules'])} of {page['total']} schedule(s)"]


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def stats_lines(tasks: Mapping[str, Any], queue: Mapping[str, Any]) -> list[str]:
    """``stats``: the task statistics of a window and the answering instance's queue."""
    counts: Mapping[str, int] = tasks["counts"]
    statuses = list(counts)
    lines = [
        f"tasks created {tasks['since']} .. {tasks['until']}: {tasks['total']}, "
        f"success rate {_rate(tasks.get('success_rate'))}",
        "  " + "  ".join(f"{status} {counts[status]}" for status in statuses),
    ]
    if tasks.get("types"):
        rows = [("TYPE", "TOTAL", *(s.upper() for s in statuses), "SUCCESS", "P50", "P95")]
        for entry in tasks["types"]:
            durations = entry.get("duration_s") or {}
            rows.append(
                (
                    entry["type"],
                    str(entry["total"]),
                    *(str(entry["counts"].get(s, 0)) for s in statuses),
                    _rate(entry.get("success_rate")),
                    _seconds(durations.get("p50")) or "-",
                    _seconds(durations.get("p95")) or "-",
                )
            )
        lines += ["", *(line.rstrip() for line in _table(rows))]
    buffer, workers, throughput = queue["buffer"], queue["workers"], queue["throughput"]
    active = queue.get("tasks") or {}
    lines += [
        "",
        f"queue of {queue['owner']} ({'running' if queue.get('running') else 'stopped'}):",
        f"  workers {workers['busy']}/{workers['total']} busy, "
        f"buffer {buffer['size']}/{buffer['capacity']}, held {queue['held']}",
        "  in the store: " + ", ".join(f"{name} {count}" for name, count in active.items()),
        f"  completed {throughput['completed']} in the last {clock_text(throughput['window_s'])} "
        f"({throughput['per_s']:.2f}/s)",
    ]
    return lines
