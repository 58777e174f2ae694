"""The text the CLI shows for a task, checked on the functions that make it."""

from __future__ import annotations

from typing import Any

from cam_tasks.cli.render import clock_text, final_line, live_line, plain_line

RUNNING: dict[str, Any] = {
    "status": "running",
    "progress": 42.0,
    "step": 3,
    "total_steps": 10,
    "message": "listing instances",
    "attempts": 1,
    "max_retries": 2,
    "duration": 12.2,
    "eta_s": 16.8,
}


def test_the_live_line_shows_status_percent_once_steps_elapsed_and_eta() -> None:
    line = live_line(RUNNING, elapsed_s=12.2, eta_s=16.8, width=200)

    assert line.split()[0] == "running"
    assert line.count("%") == 1
    assert "42.0%" in line
    assert "step 3/10" in line
    assert "12s elapsed" in line
    assert "~17s left" in line
    assert line.endswith("listing instances")


def test_the_step_name_shows_once_the_task_view_has_it() -> None:
    named = {**RUNNING, "step_name": "ecs:cn-hangzhou"}

    assert "step 3/10 ecs:cn-hangzhou" in live_line(named, elapsed_s=None, eta_s=None, width=200)
    assert "step 3/10 ecs:cn-hangzhou" in plain_line(named)


def test_the_live_line_fits_the_terminal_and_stays_one_line() -> None:
    long = {**RUNNING, "message": "x" * 300 + "\nsecond line"}

    line = live_line(long, elapsed_s=1.0, eta_s=None, width=60)

    assert len(line) == 60
    assert line.endswith("…")
    assert "\n" not in line
    assert "left" not in line  # no ETA known


def test_a_retried_task_says_which_attempt_runs() -> None:
    assert "attempt 2 of 3" in plain_line({**RUNNING, "attempts": 2})
    assert "attempt" not in plain_line(RUNNING)


def test_the_final_line_says_how_the_task_ended() -> None:
    done = {"status": "completed", "duration": 2.04, "result": {"added": 3}}
    failed = {
        "status": "failed",
        "duration": 0.4,
        "attempts": 3,
        "error": {"type": "PermanentError", "message": "bad account"},
    }
    big = {"status": "completed", "duration": 1.0, "result": {"ids": list(range(100))}}

    assert final_line(done) == 'completed in 2.0s: {"added":3}'
    assert final_line({**done, "result": None}) == "completed in 2.0s"
    assert final_line(failed) == "failed in 0.4s after 3 attempts: PermanentError: bad account"
    assert final_line({"status": "cancelled", "duration": 5.06}) == "cancelled after 5.1s"
    assert final_line({"status": "cancelled", "duration": None}) == "cancelled before it started"
    assert len(final_line(big)) < 150
    assert final_line(big).endswith("…")


def test_spans_read_at_a_glance() -> None:
    assert [clock_text(s) for s in (0.4, 7, 185, 7440)] == ["0s", "7s", "3m05s", "2h04m"]
