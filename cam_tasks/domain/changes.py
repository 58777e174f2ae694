"""The lifecycle's policy: which action a request really leads to, and what each action writes.

Decided here once, applied by every store (SAQ's ``finish``/``_finish`` split; River's driver
primitives under a maintenance policy): a store asks these functions what to write and writes it
as one atomic conditional update; it never decides a status, a history record or an expiry
itself. The Mongo repository encodes a :class:`Change` into one update document; the memory
repository applies it to its copy. Both therefore change exactly the same fields for each
action, and the target status always comes from the transition table
(``TRANSITIONS[action].target``).

Decisions:

- :func:`ending_action`: a cancel request wins over handing an attempt back (release,
  retry_later, rescue): back to pending, the next claim would clear the flag and lose it;
- :func:`rescue_action`: a task whose owner's lease expired goes back to pending while attempts
  remain, else fails (``lease_expired``), unless a cancel was requested;
- :func:`cancel_action`: a pending task is cancelled at once, a running one only asked to stop.

What a write contains:

- every write sets ``updated_at``;
- every write that ends an attempt appends one :class:`AttemptRecord` to ``history`` and clears
  ``owner`` / ``lease_until``;
- a write whose target is terminal sets ``completed_at`` and, when retention is configured,
  ``expire_at = now + retention_s``; any other write removes ``expire_at`` (a no-op on active
  tasks, and how :meth:`retry` makes a finished task permanent again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cam_tasks.domain.clock import to_millis
from cam_tasks.domain.errors import IllegalTransitionError
from cam_tasks.domain.status import TRANSITIONS, Action, TaskStatus
from cam_tasks.domain.task import AttemptRecord, Lease, Progress, TaskError

__all__ = [
    "LEASE_EXPIRED",
    "Change",
    "cancel_action",
    "cancel_change",
    "cancel_flag_change",
    "claim_change",
    "ending_action",
    "finish_change",
    "heartbeat_change",
    "rescue_action",
    "retry_change",
    "unclaim_change",
]

#: The error a rescued attempt records: its owner stopped renewing the lease (it died or hung).
LEASE_EXPIRED = TaskError(type="lease_expired", message="the owner's lease expired")
_CANCELLED = TaskError(type="cancelled", message="cancelled on request")

#: How each attempt-ending action is recorded in ``history``.
_OUTCOMES: dict[Action, str] = {
    Action.COMPLETE: "completed",
    Action.FAIL: "failed",
    Action.RETRY_LATER: "retry",
    Action.RELEASE: "released",
    Action.ACKNOWLEDGE_CANCEL: "cancelled",
    Action.RESCUE: "rescued",
    Action.RESCUE_EXHAUSTED: "rescued",
}


@dataclass(frozen=True, slots=True)
class Change:
    """The fields one action writes, as domain values.

    ``fields`` are set as given; ``attempts_delta`` is added to ``attempts``; ``record``, when
    given, is appended to ``history``; when ``touches_expiry``, ``expire_at`` replaces the stored
    expiry (None removes it).
    """

    fields: dict[str, Any]
    attempts_delta: int = 0
    record: AttemptRecord | None = None
    expire_at: datetime | None = None
    touches_expiry: bool = True


#: Actions that hand an attempt back rather than end the task: a cancel request wins over them.
_YIELDS_TO_CANCEL = frozenset(
    {Action.RELEASE, Action.RETRY_LATER, Action.RESCUE, Action.RESCUE_EXHAUSTED}
)


def ending_action(requested: Action, *, cancel_requested: bool) -> Action:
    """The action that ends an attempt when ``requested`` is asked for and the task's cancel
    flag is ``cancel_requested``: ``acknowledge_cancel`` instead of handing the task back
    (release, retry_later, rescue), since the next claim would clear the flag and lose the
    request; ``requested`` otherwise.

    A store applies it in its conditional write: for each value of the flag, it writes the
    action this returns, filtered on that value (so a request that arrives between a read and
    the write makes the write miss instead of being dropped).
    """
    if cancel_requested and requested in _YIELDS_TO_CANCEL:
        return Action.ACKNOWLEDGE_CANCEL
    return requested


def rescue_action(*, attempts: int, max_attempts: int, cancel_requested: bool) -> Action:
    """What becomes of a running task whose owner's lease expired (its process died or hung):
    pending again while attempts remain (``rescue``), failed with ``lease_expired`` when none
    does (``rescue_exhausted``), cancelled when a cancel was requested."""
    action = Action.RESCUE_EXHAUSTED if attempts >= max_attempts else Action.RESCUE
    return ending_action(action, cancel_requested=cancel_requested)


def cancel_action(task_id: str, status: TaskStatus) -> Action:
    """What a cancel request does to a task in ``status``: ``cancel`` (pending: cancelled at
    once) or ``request_cancel`` (running: flagged; its owner stops it and acknowledges).
    IllegalTransitionError for a finished task."""
    for action in (Action.CANCEL, Action.REQUEST_CANCEL):
        if status in TRANSITIONS[action].sources:
            return action
    raise IllegalTransitionError(task_id, status.value, Action.CANCEL.value)


def _target(action: Action) -> TaskStatus:
    target = TRANSITIONS[action].target
    if target is None:  # pragma: no cover - only DELETE has no target, and it writes nothing
        raise ValueError(f"{action} removes the task")
    return target


def _expiry(target: TaskStatus, now: datetime, retention_s: float | None) -> datetime | None:
    if target.is_terminal and retention_s is not None:
        return to_millis(now + timedelta(seconds=retention_s))
    return None


def claim_change(*, owner: str, now: datetime, lease_s: float) -> Change:
    """pending → running for a new attempt: fresh lease, progress reset, cancel flag cleared."""
    now = to_millis(now)
    return Change(
        {
            "status": _target(Action.CLAIM),
            "owner": owner,
            "lease_until": to_millis(now + timedelta(seconds=lease_s)),
            "started_at": now,
            "updated_at": now,
            "cancel_requested": False,
            "progress": 0.0,
            "message": "",
            "step": None,
            "total_steps": None,
            "step_name": None,
        },
        attempts_delta=1,
        touches_expiry=False,
    )


def unclaim_change(*, now: datetime) -> Change:
    """running → pending as if the claim never happened: the attempt given back, no owner, no
    start, no history record (the executor never started). For a claim whose concurrency key
    turned out to be full."""
    now = to_millis(now)
    return Change(
        {
            "status": _target(Action.UNCLAIM),
            "owner": None,
            "lease_until": None,
            "started_at": None,
            "updated_at": now,
        },
        attempts_delta=-1,
        touches_expiry=False,
    )


def heartbeat_change(*, now: datetime, lease_s: float, progress: Progress | None) -> Change:
    """Renew the lease (and record progress); the status does not change."""
    now = to_millis(now)
    fields: dict[str, Any] = {
        "lease_until": to_millis(now + timedelta(seconds=lease_s)),
        "updated_at": now,
    }
    if progress is not None:
        fields.update(
            progress=float(progress.percent),
            message=progress.message,
            step=progress.step,
            total_steps=progress.total_steps,
            step_name=progress.step_name,
        )
    return Change(fields, touches_expiry=False)


def finish_change(
    action: Action,
    lease: Lease,
    *,
    started_at: datetime | None,
    now: datetime,
    retention_s: float | None,
    error: TaskError | None = None,
    result: Any = None,
    run_at: datetime | None = None,
    progress: Progress | None = None,
) -> Change:
    """End the attempt ``lease`` names with ``action`` (complete, fail, retry_later, release,
    acknowledge_cancel, rescue, rescue_exhausted).

    ``started_at`` is the attempt's start as stored (the record needs it). ``complete`` clears
    the last error (it stays in ``history``); ``acknowledge_cancel`` keeps the stored result
    unless ``result`` is given; ``release`` gives the attempt back.
    """
    if action not in _OUTCOMES:
        raise ValueError(f"{action} does not end an attempt")
    now = to_millis(now)
    target = _target(action)
    fields: dict[str, Any] = {
        "status": target,
        "owner": None,
        "lease_until": None,
        "updated_at": now,
    }
    if target.is_terminal:
        fields["completed_at"] = now
    if progress is not None:
        fields.update(
            progress=float(progress.percent),
            message=progress.message,
            step=progress.step,
            total_steps=progress.total_steps,
            step_name=progress.step_name,
        )
    if action is Action.COMPLETE:
        fields.update(result=result, error=None, progress=100.0)
    elif action is Action.ACKNOWLEDGE_CANCEL:
        error = _CANCELLED
        fields["error"] = error
        if result is not None:
            fields["result"] = result
    elif action in (Action.RESCUE, Action.RESCUE_EXHAUSTED):
        error = LEASE_EXPIRED
        fields["error"] = error
    elif error is not None:
        fields["error"] = error
    if target is TaskStatus.PENDING:
        fields["run_at"] = to_millis(run_at or now)
    record = AttemptRecord.model_construct(
        attempt=lease.attempt,
        owner=lease.owner,
        started_at=to_millis(started_at or now),
        ended_at=now,
        outcome=_OUTCOMES[action],
        error=error,
    )
    return Change(
        fields,
        attempts_delta=-1 if action is Action.RELEASE else 0,
        record=record,
        expire_at=_expiry(target, now, retention_s),
    )


def cancel_change(*, now: datetime, retention_s: float | None) -> Change:
    """pending → cancelled at once (no attempt ran, so no history record)."""
    now = to_millis(now)
    target = _target(Action.CANCEL)
    return Change(
        {"status": target, "completed_at": now, "updated_at": now, "error": _CANCELLED},
        expire_at=_expiry(target, now, retention_s),
    )


def cancel_flag_change(*, now: datetime) -> Change:
    """Ask the owner of a running task to stop: only ``cancel_requested = True``; the status
    changes when the owner acknowledges (``ACKNOWLEDGE_CANCEL``), within one heartbeat."""
    return Change({"cancel_requested": True, "updated_at": to_millis(now)}, touches_expiry=False)


def retry_change(*, now: datetime) -> Change:
    """failed/cancelled → pending, due now, as fresh (``history`` is kept, expiry removed)."""
    now = to_millis(now)
    return Change(
        {
            "status": _target(Action.RETRY),
            "run_at": now,
            "attempts": 0,
            "result": None,
            "error": None,
            "progress": 0.0,
            "message": "",
            "step": None,
            "total_steps": None,
            "step_name": None,
            "started_at": None,
            "completed_at": None,
            "owner": None,
            "lease_until": None,
            "cancel_requested": False,
            "updated_at": now,
        }
    )
