"""The task: an immutable record of one unit of work and everything known about its run."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cam_tasks.domain.clock import utc
from cam_tasks.domain.status import TaskStatus

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_QUEUE",
    "MAX_DELAY_S",
    "MAX_KEY_LENGTH",
    "MAX_RETRIES",
    "MAX_TIMEOUT_S",
    "QUEUE_NAME_PATTERN",
    "SUBMIT_OPTIONS",
    "AttemptRecord",
    "Lease",
    "Priority",
    "Progress",
    "Task",
    "TaskError",
    "new_task",
    "new_task_id",
]

DEFAULT_MAX_RETRIES = 3
#: Bounds of the submit options, so that every value a client may send is one the store and the
#: clock can hold: retries, a run's time limit (30 days), and a delay (10 years).
MAX_RETRIES: Final = 1000
MAX_TIMEOUT_S: Final = 30 * 86_400.0
MAX_DELAY_S: Final = 10 * 365 * 86_400.0
#: Longest ``unique_key`` or ``concurrency_key``.
MAX_KEY_LENGTH: Final = 200
#: The queue of a task whose submitter and executor name none.
DEFAULT_QUEUE = "default"
#: What a queue may be called: 1 to 64 letters, digits, ``_ . -``, starting with a letter or
#: digit (it appears in URLs, metrics labels and configuration keys).
QUEUE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Priority(IntEnum):
    """Named priorities; higher runs first among due tasks."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    URGENT = 3


class TaskError(BaseModel):
    """Why an attempt (or the task) failed: a machine ``type`` and a human ``message``.

    ``type`` is the exception class name for executor errors, or one of the reserved codes
    ``timeout``, ``lease_expired``, ``cancelled``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    message: str = ""


class AttemptRecord(BaseModel):
    """One finished attempt: when it ran and how it ended (``error`` is None when it succeeded)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempt: int
    owner: str
    started_at: datetime
    ended_at: datetime
    outcome: str  # completed | failed | retry | released | rescued | cancelled | lost
    error: TaskError | None = None

    _utc = field_validator("started_at", "ended_at")(utc)


class Progress(BaseModel):
    """What a running task last reported; ``percent`` (0..100) never decreases in an attempt."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    percent: float = Field(default=0.0, ge=0.0, le=100.0)
    message: str = ""
    step: int | None = Field(default=None, ge=0)
    total_steps: int | None = Field(default=None, ge=0)
    #: What the current step does, in words ("Syncing ecs in cn-hangzhou"); None when untold.
    step_name: str | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    """The fencing token of one claimed attempt: every later write must match the task, owner
    and attempt, and the start when the lease has one."""

    task_id: str
    owner: str
    attempt: int
    #: When the attempt started (its history record's start). Part of the fence when known: a
    #: released attempt is given back (``attempts - 1``), so the same owner may claim the task
    #: again under the same attempt number; only the start tells the two claims apart.
    started_at: datetime | None = None


class Task(BaseModel):
    """A stored task. Frozen: changes happen in the repository and come back as a new Task.

    This class is the one list of a task's fields: the stored document, the views, the submit
    request and :meth:`TaskService.submit`'s options are derived from it (what a submitter may
    choose is named by :data:`SUBMIT_OPTIONS`). docs/architecture.md, "Adding a field", says
    what else a new field may need.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    type: str
    status: TaskStatus = TaskStatus.PENDING
    params: dict[str, Any] = Field(default_factory=dict)
    result: Any = None
    error: TaskError | None = None
    progress: float = Field(default=0.0, ge=0.0, le=100.0)
    message: str = ""
    step: int | None = None
    total_steps: int | None = None
    step_name: str | None = None
    attempts: int = Field(default=0, ge=0)
    max_retries: int = Field(default=DEFAULT_MAX_RETRIES, ge=0, le=MAX_RETRIES)
    priority: int = Priority.NORMAL
    #: The queue it waits in and runs from; each queue has its own worker slots per process.
    queue: str = Field(default=DEFAULT_QUEUE, pattern=QUEUE_NAME_PATTERN)
    run_at: datetime
    timeout_s: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT_S)
    created_by: str = "system"
    project_id: str | None = None
    idempotency_key: str | None = None
    #: At most one pending or running task per key (and project): a duplicate submit joins it.
    unique_key: str | None = Field(default=None, min_length=1, max_length=MAX_KEY_LENGTH)
    #: Tasks sharing this key run at most the key's limit at once, across all instances.
    concurrency_key: str | None = Field(default=None, min_length=1, max_length=MAX_KEY_LENGTH)
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    owner: str | None = None
    lease_until: datetime | None = None
    cancel_requested: bool = False
    history: tuple[AttemptRecord, ...] = ()
    #: The submitter's trace context (W3C ``traceparent``…) when tracing is on, so the
    #: execution joins the submitter's trace on whichever instance runs it.
    trace_context: dict[str, str] | None = None

    _utc = field_validator(
        "run_at", "created_at", "updated_at", "started_at", "completed_at", "lease_until"
    )(lambda v: None if v is None else utc(v))

    @property
    def max_attempts(self) -> int:
        """Attempts allowed in all: the first run plus ``max_retries`` retries."""
        return self.max_retries + 1

    @property
    def lease(self) -> Lease:
        """The fencing token of the current attempt (only meaningful while running)."""
        if self.owner is None:
            raise ValueError(f"task {self.id} is not claimed")
        return Lease(self.id, self.owner, self.attempts, self.started_at)

    def duration_s(self, now: datetime | None = None) -> float | None:
        """Seconds from start to completion, or to ``now`` while running; None before start."""
        if self.started_at is None:
            return None
        end = self.completed_at or now
        if end is None:
            return None
        return max(0.0, (end - self.started_at).total_seconds())


#: The fields of :class:`Task` a submitter chooses, beside ``type`` and ``params``; the rest are
#: the runtime's. ``TaskService.submit``, ``TaskSubmission`` and the HTTP submit body take these
#: (an absent option takes its default: the executor's registration, else the field's own).
SUBMIT_OPTIONS: tuple[str, ...] = (
    "priority",
    "queue",
    "run_at",
    "max_retries",
    "timeout_s",
    "idempotency_key",
    "unique_key",
    "concurrency_key",
)


class _TimeOrderedIds:
    """UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then a 12-bit counter that keeps ids made
    in the same millisecond in creation order, then 62 random bits.

    Ordering ids therefore orders tasks by submission, which the list order ("newest first")
    and the claim order ("then submission order") rely on for ties of ``created_at``.
    """

    #: Random bytes are read from the OS this many at a time (8 per id): one system call per
    #: 512 ids instead of one per id, from the same CSPRNG as ``secrets``.
    _RANDOM_CHUNK = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._counter = 0
        self._random = b""
        self._offset = 0

    def _random_bits(self) -> int:
        """62 random bits (call with the lock held)."""
        if self._offset == len(self._random):
            self._random, self._offset = os.urandom(self._RANDOM_CHUNK), 0
        start, self._offset = self._offset, self._offset + 8
        return int.from_bytes(self._random[start : self._offset]) >> 2

    def __call__(self) -> str:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms > self._last_ms:
                # A random start, with room to count up.
                self._last_ms, self._counter = ms, self._random_bits() & 0x3FF
            else:  # same millisecond (or the clock stepped back): count on from the last id
                self._counter += 1
                if self._counter > 0xFFF:
                    self._last_ms, self._counter = self._last_ms + 1, 0
            value = (self._last_ms & (2**48 - 1)) << 80 | 0x7 << 76 | self._counter << 64
            value |= 0b10 << 62 | self._random_bits()
        # str(uuid.UUID(int=value)), without building the UUID object.
        digits = f"{value:032x}"
        return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


new_task_id = _TimeOrderedIds()


def new_task(
    *,
    task_type: str,
    params: dict[str, Any],
    now: datetime,
    run_at: datetime | None = None,
    task_id: str | None = None,
    **fields: Any,
) -> Task:
    """A fresh pending task created at ``now``, due at ``run_at`` (default: now). ``fields``
    are any other :class:`Task` fields (the submit options, ``created_by``…), validated by the
    model (pydantic's ValidationError for a bad value, a TypeError-like error for an unknown
    name)."""
    return Task(
        id=task_id or new_task_id(),
        type=task_type,
        params=params,
        run_at=run_at or now,
        created_at=now,
        updated_at=now,
        **fields,
    )
