"""TaskChange: what a store announces after each successful write (in this process).

Listeners (long polls, server-sent events, metrics, throughput) receive one per write made
through :class:`~cam_tasks.repository.ObservedTaskRepository`; see docs/architecture.md,
"How the parts are wired", for when a listener is the right tool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cam_tasks.domain.status import Action, TaskStatus
from cam_tasks.domain.task import Progress, Task

__all__ = ["TaskChange", "TaskListener", "written_action"]


@dataclass(frozen=True, slots=True)
class TaskChange:
    """One successful write: the :class:`Action` the store applied (what happened, not what
    was asked: a release that a pending cancel request turned into a cancel is
    ``acknowledge_cancel``), and the task as written. ``task`` is None for ``heartbeat`` (which
    returns no task: ``progress`` is what it wrote, if anything) and ``delete`` (gone)."""

    action: Action
    task_id: str
    task: Task | None = None
    progress: Progress | None = None


TaskListener = Callable[[TaskChange], None]


def written_action(requested: Action, task: Task) -> Action:
    """The action a store applied when asked for ``requested`` and it wrote ``task``: the
    decisions of :mod:`cam_tasks.domain.changes` read back from the task's new status (a
    cancel won over a hand-back, a rescue without attempts left failed the task, a cancel
    request on a pending task cancelled it)."""
    status = task.status
    if requested in (Action.RELEASE, Action.RETRY_LATER, Action.RESCUE):
        if status is TaskStatus.CANCELLED:
            return Action.ACKNOWLEDGE_CANCEL
        if requested is Action.RESCUE and status is TaskStatus.FAILED:
            return Action.RESCUE_EXHAUSTED
    elif requested in (Action.CANCEL, Action.REQUEST_CANCEL):
        return Action.CANCEL if status is TaskStatus.CANCELLED else Action.REQUEST_CANCEL
    return requested
