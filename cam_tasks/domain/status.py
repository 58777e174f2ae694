"""Task statuses and the one table of legal transitions.

Every change of status anywhere in cam_tasks names an :class:`Action`; the table below says from
which statuses it is legal and which status it leads to. Repositories turn ``sources(action)``
into the filter of their atomic update, so a transition the table forbids can never be written,
even by two processes racing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cam_tasks.domain.errors import IllegalTransitionError

__all__ = [
    "ACTIVE_STATUSES",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "Action",
    "TaskStatus",
    "Transition",
    "check_transition",
]


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})
ACTIVE_STATUSES = frozenset({TaskStatus.PENDING, TaskStatus.RUNNING})


class Action(StrEnum):
    """Everything that can happen to a stored task; every write a store makes names one (and
    :class:`~cam_tasks.domain.events.TaskChange` reports it)."""

    SUBMIT = "submit"  # a new task is stored
    CLAIM = "claim"  # a worker takes a due pending task
    COMPLETE = "complete"  # the executor returned
    FAIL = "fail"  # the executor failed and no attempt remains (or the error is permanent)
    RETRY_LATER = "retry_later"  # the executor failed; try again at run_at
    RELEASE = "release"  # graceful stop hands a running task back without spending an attempt
    UNCLAIM = "unclaim"  # a claim undone before the task started (its concurrency key was full)
    RESCUE = "rescue"  # the owner's lease expired; attempts remain
    RESCUE_EXHAUSTED = "rescue_exhausted"  # the owner's lease expired; no attempt remains
    HEARTBEAT = "heartbeat"  # the owner renews its lease (and writes progress)
    CANCEL = "cancel"  # a pending task is cancelled before it runs
    REQUEST_CANCEL = "request_cancel"  # a running task is asked to stop (its owner acknowledges)
    ACKNOWLEDGE_CANCEL = "acknowledge_cancel"  # the owner stopped a running task on request
    RETRY = "retry"  # an operator re-runs a failed or cancelled task
    DELETE = "delete"  # remove a finished task


@dataclass(frozen=True, slots=True)
class Transition:
    sources: frozenset[TaskStatus]
    target: TaskStatus | None  # None: the task no longer exists
    # (``sources`` is empty for ``submit``: the task did not exist before.)


_P, _R = TaskStatus.PENDING, TaskStatus.RUNNING
_C, _F, _X = TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED

TRANSITIONS: dict[Action, Transition] = {
    Action.SUBMIT: Transition(frozenset(), _P),
    Action.CLAIM: Transition(frozenset({_P}), _R),
    Action.COMPLETE: Transition(frozenset({_R}), _C),
    Action.FAIL: Transition(frozenset({_R}), _F),
    Action.RETRY_LATER: Transition(frozenset({_R}), _P),
    Action.RELEASE: Transition(frozenset({_R}), _P),
    Action.UNCLAIM: Transition(frozenset({_R}), _P),
    Action.RESCUE: Transition(frozenset({_R}), _P),
    Action.RESCUE_EXHAUSTED: Transition(frozenset({_R}), _F),
    Action.HEARTBEAT: Transition(frozenset({_R}), _R),
    Action.CANCEL: Transition(frozenset({_P}), _X),
    Action.REQUEST_CANCEL: Transition(frozenset({_R}), _R),
    Action.ACKNOWLEDGE_CANCEL: Transition(frozenset({_R}), _X),
    Action.RETRY: Transition(frozenset({_F, _X}), _P),
    Action.DELETE: Transition(frozenset({_C, _F, _X}), None),
}


def check_transition(task_id: str, status: TaskStatus, action: Action) -> TaskStatus | None:
    """Return the status ``action`` leads to from ``status``.

    Raises :class:`IllegalTransitionError` when the table forbids it.
    """
    transition = TRANSITIONS[action]
    if status not in transition.sources:
        raise IllegalTransitionError(task_id, status.value, action.value)
    return transition.target
