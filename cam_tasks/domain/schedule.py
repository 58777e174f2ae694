"""Schedules: a cron expression in a time zone that fires a task of one type at each fire time.

The cron dialect is the one of Debian's cron (five fields: minute, hour, day of month, month,
day of week; names like ``MON``/``JAN``; ``*/5``, ranges and lists; plus ``L``, ``LW`` and
``DOW#n``), evaluated by `cronsim <https://pypi.org/project/cronsim/>`_, which reproduces
Debian cron's behaviour across daylight-saving changes. The usual aliases are expanded here
(:data:`CRON_ALIASES`); ``@reboot`` has no meaning for a shared schedule and is refused.

Across a DST change, in the schedule's own zone (what Debian cron does):

- a job at a fixed local time that falls in the skipped hour (spring forward) fires once, right
  after the change (``30 2 * * *`` in Europe/Berlin fires at 03:00 on that day);
- a job at a fixed local time in the repeated hour (fall back) fires once, at the first pass;
- a job whose minute or hour field starts with ``*`` (``*/15 * * * *``, ``0 * * * *``) follows
  real elapsed time: it fires in both passes of a repeated hour and not in a skipped one.

Errors added to the domain's tree (``cam_tasks.domain.errors``)::

    CamTasksError
    ├── ScheduleNotFoundError      no schedule has that name
    └── ScheduleConflictError      the change conflicts with the stored state
        └── ScheduleExistsError    a schedule with that name already exists

Invalid expressions or zones raise :class:`InvalidParamsError` with field details, like any
other invalid input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from cam_tasks.domain.clock import utc
from cam_tasks.domain.errors import CamTasksError, InvalidParamsError
from cam_tasks.domain.task import Priority

__all__ = [
    "CRON_ALIASES",
    "MAX_EXPRESSION_LENGTH",
    "MAX_SCHEDULE_NAME_LENGTH",
    "SCHEDULE_NAME_PATTERN",
    "Schedule",
    "ScheduleConflictError",
    "ScheduleExistsError",
    "ScheduleNotFoundError",
    "check_schedule_name",
    "fire_key",
    "next_fire_time",
    "parse_cron",
    "parse_timezone",
    "schedule_task_creator",
    "time_zones",
]

#: The aliases of crontab(5), expanded before evaluation.
CRON_ALIASES: Final[Mapping[str, str]] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

MAX_EXPRESSION_LENGTH: Final = 200
#: Names appear in URLs and in task idempotency keys (``schedule:<name>:<time>``), which are
#: limited to 200 characters: 100 leaves room for the rest.
MAX_SCHEDULE_NAME_LENGTH: Final = 100
SCHEDULE_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
_NAME = re.compile(SCHEDULE_NAME_PATTERN)
_CRON_CHARACTERS = re.compile(r"^[A-Za-z0-9*/,#@ -]+$")


class ScheduleNotFoundError(CamTasksError):
    """No schedule is named ``name`` (never created, or deleted)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"schedule {name!r} not found")
        self.name = name


class ScheduleConflictError(CamTasksError):
    """The change conflicts with the stored schedule ``name`` (``reason`` says how)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"schedule {name!r}: {reason}")
        self.name = name
        self.reason = reason


class ScheduleExistsError(ScheduleConflictError):
    """A schedule named ``name`` already exists; names are unique."""

    def __init__(self, name: str) -> None:
        super().__init__(name, "a schedule with this name already exists")


def _problem(loc: str, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": [loc], "msg": msg, "type": kind}


def check_schedule_name(name: object) -> str:
    """``name`` when it is a valid schedule name, else InvalidParamsError (loc ``name``)."""
    if isinstance(name, str) and _NAME.fullmatch(name):
        return name
    raise InvalidParamsError(
        "invalid schedule name",
        [
            _problem(
                "name",
                f"must be 1 to {MAX_SCHEDULE_NAME_LENGTH} characters of letters, digits, "
                "'.', '_' or '-', starting with a letter or digit",
                "schedule_name",
            )
        ],
    )


def _invalid_cron(msg: str) -> InvalidParamsError:
    return InvalidParamsError("invalid cron expression", [_problem("expression", msg, "cron")])


def _expand(expression: str) -> str:
    return CRON_ALIASES.get(expression.lower(), expression)


@lru_cache(maxsize=1024)
def _check_cron(expression: str) -> None:
    """Raise InvalidParamsError unless ``expression`` (normalised) is a valid 5-field cron
    expression that fires at least once in the next 50 years. Cached: it is pure."""
    if expression.startswith("@") and expression.lower() not in CRON_ALIASES:
        raise _invalid_cron(
            "unknown alias; use five fields or one of " + ", ".join(sorted(CRON_ALIASES))
        )
    expanded = _expand(expression)
    if len(expanded.split()) != 5:
        raise _invalid_cron(
            "must have five fields (minute hour day-of-month month day-of-week) or be an alias"
        )
    try:
        # Evaluated from a fixed instant in a zone with DST, so that the answer never depends
        # on when it is asked; cronsim gives up (StopIteration) after 50 years without a match.
        iterator = CronSim(expanded, datetime(2000, 1, 1, tzinfo=ZoneInfo("America/New_York")))
        next(iterator)
    except CronSimError as exc:
        raise _invalid_cron(str(exc) or "invalid cron expression") from None
    except StopIteration:
        raise _invalid_cron("never fires (no matching date)") from None


def parse_cron(expression: object) -> str:
    """The expression, whitespace-normalised, when valid; else InvalidParamsError with a
    detail at ``expression``. Aliases are kept as written (``@daily``)."""
    if not isinstance(expression, str):
        raise _invalid_cron("must be a string")
    normalised = " ".join(expression.split())
    if not normalised:
        raise _invalid_cron("must not be empty")
    if len(normalised) > MAX_EXPRESSION_LENGTH or not _CRON_CHARACTERS.fullmatch(normalised):
        raise _invalid_cron(
            f"at most {MAX_EXPRESSION_LENGTH} characters of digits, names, and * / , - # @"
        )
    _check_cron(normalised)
    return normalised


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=1)
def time_zones() -> tuple[str, ...]:
    """The IANA zone names a schedule may use, sorted: those of the system's (or the
    ``tzdata`` package's) time zone database. Aliases the database resolves but does not list
    (``posixrules``, ``localtime``) are not among them, so the API document can name every
    accepted zone."""
    return tuple(sorted(available_timezones()))


@lru_cache(maxsize=1)
def _listed_zones() -> frozenset[str]:
    return frozenset(time_zones())


def parse_timezone(name: object) -> ZoneInfo:
    """The IANA zone ``name`` (``"Europe/Berlin"``, ``"UTC"``); else InvalidParamsError with a
    detail at ``timezone``."""
    if isinstance(name, str) and name in _listed_zones():
        try:
            return _zone(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass  # not found, or not a zone key at all ("../x", "a//b")
    raise InvalidParamsError(
        "invalid time zone",
        [_problem("timezone", "must be an IANA time zone name such as Europe/Berlin", "timezone")],
    )


def next_fire_time(expression: str, timezone: str, *, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after``, as a UTC datetime; None when the
    expression never fires again (cronsim looks 50 years ahead).

    Computed in ``timezone`` with Debian cron's DST rules (see the module docstring). Pure and
    deterministic. InvalidParamsError when the expression or zone is invalid.
    """
    expression = parse_cron(expression)
    zone = parse_timezone(timezone)
    after = utc(after)
    iterator = CronSim(_expand(expression), after.astimezone(zone))
    try:
        while True:
            fire = next(iterator).astimezone(UTC)
            # cronsim evaluates fixed-time jobs in naive local time. Starting inside the second
            # pass of a repeated (fall-back) hour, it can answer the first pass of that hour,
            # which lies before `after`: never go back in time.
            if fire > after:
                return fire
    except StopIteration:
        return None


def fire_key(name: str, fire_at: datetime) -> str:
    """The idempotency key of the task that schedule ``name`` fires for ``fire_at``: one task per
    (schedule, fire time), however many instances or retries submit it."""
    stamp = utc(fire_at).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f"schedule:{name}:{stamp}"


def schedule_task_creator(name: str) -> str:
    """``created_by`` of the tasks that schedule ``name`` fires (list them with that filter)."""
    return f"schedule:{name}"


class Schedule(BaseModel):
    """A stored schedule. Frozen: changes happen in the repository and come back as a new one.

    Configuration: ``name`` (unique, never changes), ``expression``, ``timezone``, ``type``,
    ``params`` (validated by the executor's model when the schedule is created or changed),
    ``priority`` and ``active``.

    State: ``next_run_at`` is the next fire time (None while paused, or when the expression never
    fires again); ``last_run_at`` when it last fired a task and ``last_task_id`` that task
    (``last_error`` when the fire could not submit one). ``firing_at`` is a fire time claimed by
    a scheduler whose task is not recorded yet (see :mod:`cam_tasks.queue.scheduler`).
    ``revision`` counts configuration changes; a scheduler's claim is conditional on it, so it
    never fires a slot computed from a configuration that changed meanwhile.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    expression: str
    timezone: str = "UTC"
    type: str
    params: dict[str, Any] = Field(default_factory=dict)
    priority: int = Priority.NORMAL
    active: bool = True
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    last_task_id: str | None = None
    last_error: str | None = None
    firing_at: datetime | None = None
    revision: int = Field(default=0, ge=0)
    created_at: datetime
    updated_at: datetime

    _utc = field_validator("next_run_at", "last_run_at", "firing_at", "created_at", "updated_at")(
        lambda v: None if v is None else utc(v)
    )

    def next_fire_after(self, when: datetime) -> datetime | None:
        """The first fire time of this schedule strictly after ``when`` (UTC), or None."""
        return next_fire_time(self.expression, self.timezone, after=when)
