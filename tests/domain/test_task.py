"""Tasks are immutable records; times are UTC; progress reports only move forward."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from cam_tasks.domain import ManualClock, Priority, TaskStatus, new_task
from cam_tasks.executor import TaskContext

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_new_task_is_pending_and_due_now() -> None:
    task = new_task(task_type="t", params={"a": 1}, now=NOW)
    assert task.status is TaskStatus.PENDING
    assert task.run_at == NOW
    assert task.attempts == 0
    assert task.priority == Priority.NORMAL
    assert task.max_attempts == task.max_retries + 1


def test_tasks_are_frozen() -> None:
    task = new_task(task_type="t", params={}, now=NOW)
    with pytest.raises(ValidationError):
        task.status = TaskStatus.RUNNING  # type: ignore[misc]


def test_times_are_normalised_to_utc() -> None:
    plus8 = timezone(timedelta(hours=8))
    task = new_task(task_type="t", params={}, now=datetime(2026, 3, 1, 20, 0, tzinfo=plus8))
    assert task.created_at == NOW
    assert task.created_at.tzinfo is UTC


def test_duration_runs_from_start_to_completion() -> None:
    task = new_task(task_type="t", params={}, now=NOW)
    assert task.duration_s(NOW) is None
    started = task.model_copy(update={"started_at": NOW})
    assert started.duration_s(NOW + timedelta(seconds=3)) == 3
    done = started.model_copy(update={"completed_at": NOW + timedelta(seconds=5)})
    assert done.duration_s(NOW + timedelta(hours=1)) == 5


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(NOW)
    assert clock.now() == NOW
    assert clock.advance(1.5) == NOW + timedelta(seconds=1.5)


def context() -> TaskContext:
    return TaskContext(task_id="t", task_type="x", attempt=1, max_attempts=1, run_at=NOW)


def test_progress_never_goes_back_within_an_attempt() -> None:
    ctx = context()
    ctx.report(60, "a")
    ctx.report(20, "b")
    assert ctx.progress.percent == 60
    assert ctx.progress.message == "b"


def test_progress_is_derived_from_steps_and_clamped() -> None:
    ctx = context()
    ctx.report(step=3, total_steps=8, message="Syncing region cn-shenzhen: ecs 3/8")
    assert ctx.progress.percent == pytest.approx(37.5)
    ctx.report(250)
    assert ctx.progress.percent == 100


def test_progress_is_taken_once_per_change() -> None:
    ctx = context()
    assert ctx.take_progress() is None
    ctx.report(10)
    ctx.report(20)
    taken = ctx.take_progress()
    assert taken is not None
    assert taken.percent == 20
    assert ctx.take_progress() is None
    ctx.report(20)  # no change: nothing to write
    assert ctx.take_progress() is None


def test_task_ids_are_uuid7_in_creation_order() -> None:
    import uuid

    from cam_tasks.domain.task import new_task_id

    ids = [new_task_id() for _ in range(10_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert {uuid.UUID(i).version for i in ids} == {7}
