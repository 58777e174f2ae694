"""The schedule API's request and response models (pydantic), separate from the domain's.

Like the task API's: requests are ``extra="forbid"`` and strict where JSON is unambiguous, so a
typo (``cron_expr`` for ``expression``) is a 422 naming the field; responses render times as
RFC 3339 UTC with a ``Z``. The cron expression, zone, priority and params are judged by the
service (one place for the rules), so here they are only typed.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator
from pydantic_core import PydanticCustomError

from cam_tasks.domain import MAX_PAGE_SIZE, Priority, Schedule
from cam_tasks.domain.schedule import (
    CRON_ALIASES,
    MAX_EXPRESSION_LENGTH,
    MAX_SCHEDULE_NAME_LENGTH,
    SCHEDULE_NAME_PATTERN,
)
from cam_tasks.web.schemas import MAX_OFFSET, MAX_TYPE_LENGTH, PriorityChoice, UtcDatetime

__all__ = [
    "SCHEDULE_LIST_QUERY_KEYS",
    "CreateScheduleRequest",
    "ListSchedulesQuery",
    "ScheduleFiredView",
    "ScheduleListView",
    "ScheduleView",
    "UpdateScheduleRequest",
]


def _expression_schema(schema: dict[str, Any]) -> None:
    # Cron's rules (field ranges, names, a date that exists) are beyond JSON Schema: the
    # ``cron`` format names them, and the description spells them out.
    schema.update(
        format="cron",
        description="A cron expression: five fields (minute hour day-of-month month "
        "day-of-week) as Debian's cron reads them (`*`, `*/5`, `1-5`, lists, `MON`, `JAN`, "
        "`L`, `LW`, `DOW#n`), or an alias: " + ", ".join(f"`{a}`" for a in CRON_ALIASES) + ". "
        "It must fire at least once in the next 50 years.",
    )


def _timezone_schema(schema: dict[str, Any]) -> None:
    # A format, not an enum of ~600 names: generated clients turn enums into identifiers, and
    # names such as GMT+0 and GMT-0 collide there.
    schema.update(
        format="time-zone",
        description="The IANA time zone the expression is read in: a name of the tz database "
        "(`UTC`, `Europe/Berlin`, `Asia/Shanghai`).",
        examples=["UTC", "Asia/Shanghai"],
    )


#: A cron expression, typed for the document; judged by the service.
CronExpression = Annotated[
    str,
    Field(min_length=1, max_length=MAX_EXPRESSION_LENGTH, json_schema_extra=_expression_schema),
]
#: A zone name, one of :func:`~cam_tasks.domain.schedule.time_zones` (the ``time-zone``
#: format); judged by the service.
TimeZoneName = Annotated[str, Field(json_schema_extra=_timezone_schema)]


class CreateScheduleRequest(BaseModel):
    """Body of ``POST /schedules``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        min_length=1, max_length=MAX_SCHEDULE_NAME_LENGTH, pattern=SCHEDULE_NAME_PATTERN
    )
    expression: CronExpression
    timezone: TimeZoneName = "UTC"
    type: str = Field(min_length=1, max_length=MAX_TYPE_LENGTH)
    params: dict[str, Any] = Field(default_factory=dict)
    priority: PriorityChoice = Priority.NORMAL
    active: StrictBool = True


class UpdateScheduleRequest(BaseModel):
    """Body of ``PATCH`` (or ``PUT``) ``/schedules/{name}``: the fields to change; absent or null
    fields keep their value. ``params`` replace the stored params whole."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expression: CronExpression | None = None
    timezone: TimeZoneName | None = None
    type: str | None = Field(default=None, min_length=1, max_length=MAX_TYPE_LENGTH)
    params: dict[str, Any] | None = None
    priority: PriorityChoice | None = None
    active: StrictBool | None = None

    @model_validator(mode="after")
    def _type_with_params(self) -> UpdateScheduleRequest:
        # Params are judged against a type: a change of one names the other.
        if (self.type is None) != (self.params is None):
            missing = "params" if self.params is None else "type"
            raise PydanticCustomError(
                "type_with_params",
                "type and params are changed together: give {missing} too",
                {"missing": missing},
            )
        return self


#: The only query keys ``GET /schedules`` accepts.
SCHEDULE_LIST_QUERY_KEYS: Final = frozenset({"active", "offset", "limit"})


class ListSchedulesQuery(BaseModel):
    """The query of ``GET /schedules``: ``active=true|false`` filters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    active: bool | None = None
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    limit: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE)


def _priority_name(priority: int) -> str:
    try:
        return Priority(priority).name.lower()
    except ValueError:
        return str(priority)


class ScheduleView(BaseModel):
    """A schedule as the API shows it. ``next_run_at`` is null while paused; ``last_task_id``
    is the task of the last fire (null when it could not submit one: ``last_error`` says why)."""

    name: str
    expression: str
    timezone: str
    type: str
    params: dict[str, Any]
    priority: int
    priority_name: str
    active: bool
    next_run_at: UtcDatetime | None
    last_run_at: UtcDatetime | None
    last_task_id: str | None
    last_error: str | None
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @classmethod
    def of(cls, schedule: Schedule) -> ScheduleView:
        return cls(
            name=schedule.name,
            expression=schedule.expression,
            timezone=schedule.timezone,
            type=schedule.type,
            params=schedule.params,
            priority=schedule.priority,
            priority_name=_priority_name(schedule.priority),
            active=schedule.active,
            next_run_at=schedule.next_run_at,
            last_run_at=schedule.last_run_at,
            last_task_id=schedule.last_task_id,
            last_error=schedule.last_error,
            created_at=schedule.created_at,
            updated_at=schedule.updated_at,
        )


class ScheduleListView(BaseModel):
    schedules: list[ScheduleView]
    total: int


class ScheduleFiredView(BaseModel):
    """Answer of ``POST /schedules/{name}/run``."""

    task_id: str
    message: str = "task submitted"
