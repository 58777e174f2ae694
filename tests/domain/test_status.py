"""The transition table is the only judge of status changes."""

import pytest

from cam_tasks.domain import (
    TERMINAL_STATUSES,
    TRANSITIONS,
    Action,
    IllegalTransitionError,
    TaskStatus,
    check_transition,
)


def test_every_action_has_a_transition() -> None:
    assert set(TRANSITIONS) == set(Action)


def test_only_claim_starts_a_task() -> None:
    # Heartbeats and cancel requests keep a running task running; only a claim starts one.
    starters = {
        a
        for a, t in TRANSITIONS.items()
        if t.target is TaskStatus.RUNNING and t.sources != {TaskStatus.RUNNING}
    }
    assert starters == {Action.CLAIM}


def test_terminal_states_leave_only_by_explicit_retry_or_delete() -> None:
    for status in TERMINAL_STATUSES:
        leaving = {a for a, t in TRANSITIONS.items() if status in t.sources}
        assert leaving <= {Action.RETRY, Action.DELETE}
    completed = TaskStatus.COMPLETED
    assert {t.target for t in TRANSITIONS.values() if completed in t.sources} == {None}


def test_active_tasks_cannot_be_deleted() -> None:
    for status in (TaskStatus.PENDING, TaskStatus.RUNNING):
        with pytest.raises(IllegalTransitionError) as info:
            check_transition("t1", status, Action.DELETE)
        assert info.value.task_id == "t1"
        assert info.value.status == status.value


def test_check_transition_returns_the_target() -> None:
    assert check_transition("t", TaskStatus.PENDING, Action.CLAIM) is TaskStatus.RUNNING
    assert check_transition("t", TaskStatus.FAILED, Action.RETRY) is TaskStatus.PENDING
    assert check_transition("t", TaskStatus.CANCELLED, Action.DELETE) is None
