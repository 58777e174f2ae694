"""The one exception tree of cam_tasks: every error the package raises on purpose is a
subclass of :class:`CamTasksError`, defined beside the concept it belongs to.

::

    CamTasksError
    ├── TaskNotFoundError          no task with that id (or not visible to the caller)
    ├── IllegalTransitionError     the status table forbids the requested change
    ├── ActiveTaskExistsError      another pending/running task holds the same unique key
    ├── UnknownTaskTypeError       no executor is registered for the type
    ├── InvalidParamsError         parameters or a request failed validation (field details)
    ├── TaskLostError              a fenced write matched nothing: the worker lost the task
    ├── DatabaseUnavailableError   the task store cannot be reached
    ├── StoreError                 the store refused a write for another reason (``code``)
    ├── ConfigurationError         settings or registrations are inconsistent
    ├── ExecutionError             raised by executors to steer the retry policy
    │   ├── RetryableError         try again (optionally after ``delay_s``)
    │   └── PermanentError         fail now, never retry
    ├── AccessDeniedError          the principal's role does not permit it (domain.principal)
    ├── ScheduleNotFoundError      no schedule by that name (domain.schedule)
    ├── ScheduleConflictError      a schedule write lost a race (domain.schedule)
    │   └── ScheduleExistsError    the name is taken
    ├── QueueFullError             too many pending tasks: submit refused (service.errors)
    ├── AuthenticationError        no or bad credentials (web.auth)
    ├── RateLimitedError           too many requests from one principal (web.limits)
    ├── ApiError                   an HTTP-level refusal with status and code (web.errors)
    ├── ApiResponseError           the HTTP client got an error answer (client)
    └── ServiceUnreachableError    the HTTP client could not reach the service (client)

Every error carries structured fields (``task_id``, ``status``…) so that the web layer can map it
to an HTTP answer in one table and logs can record it without parsing messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ActiveTaskExistsError",
    "CamTasksError",
    "ConfigurationError",
    "DatabaseUnavailableError",
    "ExecutionError",
    "IllegalTransitionError",
    "InvalidParamsError",
    "PermanentError",
    "RetryableError",
    "StoreError",
    "TaskLostError",
    "TaskNotFoundError",
    "UnknownTaskTypeError",
]


class CamTasksError(Exception):
    """Root of every error cam_tasks raises on purpose."""


class TaskNotFoundError(CamTasksError):
    """No task has ``task_id`` (it never existed, was deleted, or expired)."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id!r} not found")
        self.task_id = task_id


class IllegalTransitionError(CamTasksError):
    """The task is in ``status`` and the transition table forbids ``action`` from there."""

    def __init__(self, task_id: str, status: str, action: str) -> None:
        super().__init__(f"task {task_id!r} is {status}: cannot {action}")
        self.task_id = task_id
        self.status = status
        self.action = action


class ActiveTaskExistsError(CamTasksError):
    """``task_id`` cannot become active again (retry) while another task with its unique key
    is pending or running (``active_task_id``, when it could be read)."""

    def __init__(self, task_id: str, *, active_task_id: str | None) -> None:
        super().__init__(
            f"task {task_id!r}: an active task with its unique key exists"
            + ("" if active_task_id is None else f" ({active_task_id!r})")
        )
        self.task_id = task_id
        self.active_task_id = active_task_id


class UnknownTaskTypeError(CamTasksError):
    """No executor is registered for ``task_type``; ``known`` lists the registered ones."""

    def __init__(self, task_type: str, known: Sequence[str] = ()) -> None:
        super().__init__(f"unknown task type {task_type!r}")
        self.task_type = task_type
        self.known = tuple(known)


class InvalidParamsError(CamTasksError):
    """Input failed validation; ``details`` has one dict per problem (loc, msg, type)."""

    def __init__(self, message: str, details: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(message)
        self.details = list(details)


class TaskLostError(CamTasksError):
    """A write fenced on ``(task_id, owner, attempt, running)`` matched nothing.

    The task was rescued, cancelled or deleted behind the worker's back; the worker must stop
    it locally and write nothing more.
    """

    def __init__(self, task_id: str, owner: str, attempt: int) -> None:
        super().__init__(f"task {task_id!r} attempt {attempt} is no longer owned by {owner!r}")
        self.task_id = task_id
        self.owner = owner
        self.attempt = attempt


class DatabaseUnavailableError(CamTasksError):
    """The task store could not be reached or timed out; nothing was changed by this call."""


class StoreError(CamTasksError):
    """The store refused or could not complete a write for a reason other than being
    unreachable: a document it cannot store, a key that keeps colliding. ``code`` is the
    server's error code when it gave one. Retrying the same write will not help.
    """

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class ConfigurationError(CamTasksError):
    """Settings or registrations are inconsistent (duplicate executor type, bad URI…)."""


class ExecutionError(CamTasksError):
    """Base of the errors an executor raises to steer what happens to its task."""


class RetryableError(ExecutionError):
    """A transient failure: the task is retried while attempts remain.

    ``delay_s`` overrides the backoff for the next attempt when given.
    """

    def __init__(self, message: str = "", *, delay_s: float | None = None) -> None:
        super().__init__(message)
        if delay_s is not None and delay_s < 0:
            raise ValueError("delay_s must be >= 0")
        self.delay_s = delay_s


class PermanentError(ExecutionError):
    """A failure that retrying cannot fix: the task fails at once."""
