"""The running task in every log record: a context variable, a setter, and a logging filter.

The runner sets :data:`current_task` (with :func:`task_log_context`) around one attempt. A
context variable follows the attempt's awaits and the asyncio tasks it starts (the executor's
own task among them), and no other attempt's, so a record logged on the task's behalf, by the
runner or by any logger the executor uses, can carry the task's fields. :class:`TaskLogFilter`
on a handler copies them onto each record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final

from cam_tasks.domain import Task

__all__ = ["TaskLogFilter", "current_task", "task_log_context"]

#: Fields of the task attempt running in this context: ``task_id``, ``type``, ``queue`` (when
#: the task has one) and ``attempt``; None outside an attempt.
current_task: Final[ContextVar[Mapping[str, Any] | None]] = ContextVar(
    "cam_tasks_current_task", default=None
)


@contextmanager
def task_log_context(task: Task) -> Iterator[None]:
    """Make ``task`` the running task of this context until the block ends (then restore the
    previous value, so nesting and concurrent attempts never see each other's fields)."""
    fields: dict[str, Any] = {"task_id": task.id, "type": task.type}
    # Read defensively: a task model without queues has no such field.
    queue = getattr(task, "queue", None)
    if queue is not None:
        fields["queue"] = queue
    fields["attempt"] = task.attempts
    token = current_task.set(fields)
    try:
        yield
    finally:
        current_task.reset(token)


class TaskLogFilter(logging.Filter):
    """Adds the fields of :data:`current_task` to every record that does not carry them
    already (an explicit ``extra=`` wins). Attach it to a handler: it never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = current_task.get()
        if fields:
            for name, value in fields.items():
                if not hasattr(record, name):
                    setattr(record, name, value)
        return True
