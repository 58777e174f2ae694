"""TaskContext keeps what an executor reports, in the form a reader gets it."""

from __future__ import annotations

from datetime import UTC, datetime

from cam_tasks.executor import TaskContext


def context() -> TaskContext:
    return TaskContext(
        task_id="t1",
        task_type="export",
        attempt=1,
        max_attempts=3,
        run_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_progress_derived_from_steps_is_rounded_to_one_decimal() -> None:
    ctx = context()
    ctx.report(step=8, total_steps=29)  # 27.586206896551722 %
    assert ctx.progress.percent == 27.6
    assert (ctx.progress.step, ctx.progress.total_steps) == (8, 29)


def test_a_given_percent_is_rounded_to_one_decimal() -> None:
    ctx = context()
    ctx.report(100 / 3)
    assert ctx.progress.percent == 33.3


def test_rounding_never_makes_progress_go_back() -> None:
    ctx = context()
    ctx.report(27.56)
    ctx.report(27.55)
    assert ctx.progress.percent == 27.6
    ctx.report(150)
    assert ctx.progress.percent == 100.0


def test_a_report_that_rounds_to_the_same_value_writes_nothing_new() -> None:
    ctx = context()
    ctx.report(10.01)
    assert ctx.take_progress() is not None
    ctx.report(10.04)
    assert ctx.take_progress() is None


def test_a_step_name_is_kept_until_another_is_reported() -> None:
    ctx = context()
    ctx.report(step=2, total_steps=5, step_name="内容生成")
    ctx.report(50)
    assert (ctx.progress.step, ctx.progress.total_steps) == (2, 5)
    assert ctx.progress.step_name == "内容生成"
    assert ctx.take_progress() is not None
    ctx.report(step_name="内容审核")
    taken = ctx.take_progress()
    assert taken is not None
    assert taken.step_name == "内容审核"
