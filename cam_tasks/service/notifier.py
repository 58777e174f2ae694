"""TaskNotifier: how the service tells the local runtime that something changed.

The dispatcher implements it structurally (the service never imports the queue layer). Both
calls are hints for latency only: the database is the source of truth, and a dispatcher that
misses a hint still finds the task on its next poll or heartbeat.
"""

from __future__ import annotations

from typing import Protocol

from cam_tasks.domain import Task

__all__ = ["TaskNotifier"]


class TaskNotifier(Protocol):
    def task_submitted(self, task: Task) -> None:
        """A task became pending (submitted or retried): wake the local dispatcher.

        Must not block; it is called on the event loop after the task is stored.
        """
        ...

    def cancel_requested(self, task_id: str) -> None:
        """Cancellation of a running task was recorded: cancel it at once if it runs here.

        Must not block; a task running in another process is left to its owner's heartbeat.
        """
        ...

    def queues_changed(self) -> None:
        """A queue was paused or resumed through this process: read the flags again before
        the next claim (other instances see it within their poll interval).

        Must not block.
        """
        ...
