"""The schedule endpoints of the API (mounted with it: same envelope, same error table).

=========================================  ==============================================
``POST   /schedules``                      create: 201 with the schedule + Location
``GET    /schedules?active=&offset=&limit=``  list by name: ``data: {schedules, total}``
``GET    /schedules/{name}``                one schedule
``PATCH  /schedules/{name}``                change the given fields (``PUT`` is the same)
``DELETE /schedules/{name}``                delete: ``data: null``
``POST   /schedules/{name}/pause``          stop firing
``POST   /schedules/{name}/resume``         fire again from the next fire time after now
``POST   /schedules/{name}/run``            fire one task now: 202 + the task's Location
=========================================  ==============================================

Schedules belong to no project and fire tasks of no project, so managing or reading them takes
an admin principal (403 otherwise), like every task outside a project.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web
from pydantic import ValidationError

from cam_tasks.domain import AccessDeniedError, InvalidParamsError, Permission, Schedule
from cam_tasks.executor import validation_details
from cam_tasks.service import ScheduleService
from cam_tasks.web.auth import principal_of
from cam_tasks.web.envelope import success_response
from cam_tasks.web.operations import Operation, Reply, documented

# The request decoding of every route, so both APIs refuse the same way (415, 413, 400, 422 for
# the body; 400 for the query).
from cam_tasks.web.requests import parse_query, read_json_object
from cam_tasks.web.schedule_schemas import (
    SCHEDULE_LIST_QUERY_KEYS,
    CreateScheduleRequest,
    ListSchedulesQuery,
    ScheduleFiredView,
    ScheduleListView,
    ScheduleView,
    UpdateScheduleRequest,
)
from cam_tasks.web.views import task_location

__all__ = ["SCHEDULES_KEY", "schedule_routes"]

#: The :class:`ScheduleService` the handlers call.
SCHEDULES_KEY: Final = web.AppKey("cam_tasks.schedules", ScheduleService)
_SCHEDULE_ROUTE: Final = "cam_tasks.schedule"

schedule_routes = web.RouteTableDef()

_SCHEDULE_ERRORS = frozenset({403, 404, 503})


def _schedules(request: web.Request, permission: Permission) -> ScheduleService:
    """The service, once the principal is known to be an admin whose role permits
    ``permission``."""
    principal = principal_of(request)
    principal.require(permission)
    if not principal.is_admin:
        raise AccessDeniedError(principal.name, principal.role, permission)
    return request.app[SCHEDULES_KEY]


def _name(request: web.Request) -> str:
    return request.match_info["name"]


def _view(schedule: Schedule) -> dict[str, Any]:
    return ScheduleView.of(schedule).model_dump(mode="json")


def _body(request_model: type[CreateScheduleRequest | UpdateScheduleRequest], body: Any) -> Any:
    try:
        return request_model.model_validate(body)
    except ValidationError as exc:
        raise InvalidParamsError("invalid request body", validation_details(exc)) from None


@schedule_routes.post("/schedules")
@documented(
    Operation(
        "create_schedule",
        "schedules",
        "Create a schedule",
        "Needs an admin. `expression` is a cron expression read in `timezone` (an IANA zone); "
        "`params` are checked by the type's executor (422 with field details). 409 when the "
        "name is taken.",
        (Reply(201, "Created.", ScheduleView, headers={"Location": True}),),
        errors=frozenset({403, 409, 503}),
        body=CreateScheduleRequest,
    )
)
async def create_schedule(request: web.Request) -> web.Response:
    """Create a schedule: 201 with it and its Location; 409 when the name is taken."""
    schedules = _schedules(request, Permission.SUBMIT)
    body: CreateScheduleRequest = _body(CreateScheduleRequest, await read_json_object(request))
    schedule = await schedules.create(
        body.name,
        expression=body.expression,
        task_type=body.type,
        params=body.params,
        timezone=body.timezone,
        priority=body.priority,
        active=body.active,
    )
    location = str(request.app.router[_SCHEDULE_ROUTE].url_for(name=schedule.name))
    return success_response(_view(schedule), status=201, headers={"Location": location})


@schedule_routes.get("/schedules")
@documented(
    Operation(
        "list_schedules",
        "schedules",
        "List schedules by name",
        "Needs an admin. `active=true|false` filters.",
        (Reply(200, "One page of schedules and how many matched.", ScheduleListView),),
        errors=frozenset({403, 503}),
        query=ListSchedulesQuery,
    )
)
async def list_schedules(request: web.Request) -> web.Response:
    """Schedules ordered by name: ``data: {schedules, total}``."""
    schedules = _schedules(request, Permission.READ)
    query = parse_query(request, ListSchedulesQuery, SCHEDULE_LIST_QUERY_KEYS)
    page, total = await schedules.list(active=query.active, offset=query.offset, limit=query.limit)
    view = ScheduleListView(schedules=[ScheduleView.of(s) for s in page], total=total)
    return success_response(view.model_dump(mode="json"))


@schedule_routes.get("/schedules/{name}", name=_SCHEDULE_ROUTE)
@documented(
    Operation(
        "get_schedule",
        "schedules",
        "Get one schedule",
        "Needs an admin.",
        (Reply(200, "The schedule.", ScheduleView),),
        errors=_SCHEDULE_ERRORS,
    )
)
async def get_schedule(request: web.Request) -> web.Response:
    """One schedule."""
    schedule = await _schedules(request, Permission.READ).get(_name(request))
    return success_response(_view(schedule))


@schedule_routes.patch("/schedules/{name}")
@schedule_routes.put("/schedules/{name}")
@documented(
    Operation(
        "update_schedule",
        "schedules",
        "Change a schedule",
        "Needs an admin. Changes the fields given; absent or null fields keep their value, "
        "`params` replace the stored params whole. A changed expression or zone restarts the "
        "timetable from the next fire time after now.",
        (Reply(200, "The schedule after the change.", ScheduleView),),
        errors=_SCHEDULE_ERRORS | {409},
        body=UpdateScheduleRequest,
    ),
    method="PATCH",
)
@documented(
    Operation(
        "put_schedule",
        "schedules",
        "Change a schedule (as PATCH)",
        "The same partial update as PATCH, as the seed API spells it.",
        (Reply(200, "The schedule after the change.", ScheduleView),),
        errors=_SCHEDULE_ERRORS | {409},
        body=UpdateScheduleRequest,
    ),
    method="PUT",
)
async def update_schedule(request: web.Request) -> web.Response:
    """Change the fields the body gives: 200 with the schedule. ``PUT`` is accepted with the
    same (partial) meaning, as the seed API uses it."""
    schedules = _schedules(request, Permission.OPERATE)
    body: UpdateScheduleRequest = _body(UpdateScheduleRequest, await read_json_object(request))
    schedule = await schedules.update(
        _name(request),
        expression=body.expression,
        timezone=body.timezone,
        task_type=body.type,
        params=body.params,
        priority=body.priority,
        active=body.active,
    )
    return success_response(_view(schedule))


@schedule_routes.delete("/schedules/{name}")
@documented(
    Operation(
        "delete_schedule",
        "schedules",
        "Delete a schedule",
        "Needs an admin. The tasks it fired stay.",
        (Reply(200, "Deleted: `data` is null."),),
        errors=_SCHEDULE_ERRORS,
    )
)
async def delete_schedule(request: web.Request) -> web.Response:
    """Delete a schedule (the tasks it fired stay): 200 with ``data: null``."""
    await _schedules(request, Permission.OPERATE).delete(_name(request))
    return success_response(None)


@schedule_routes.post("/schedules/{name}/pause")
@documented(
    Operation(
        "pause_schedule",
        "schedules",
        "Pause a schedule",
        "Needs an admin. Idempotent.",
        (Reply(200, "The schedule, paused.", ScheduleView),),
        # Re-validated as a whole: its executor may have gone or changed its params since.
        errors=_SCHEDULE_ERRORS | {409, 422},
    )
)
async def pause_schedule(request: web.Request) -> web.Response:
    """Stop firing: 200 with the schedule (idempotent)."""
    schedule = await _schedules(request, Permission.OPERATE).pause(_name(request))
    return success_response(_view(schedule))


@schedule_routes.post("/schedules/{name}/resume")
@documented(
    Operation(
        "resume_schedule",
        "schedules",
        "Resume a schedule",
        "Needs an admin. Fires again from the next fire time after now. Idempotent.",
        (Reply(200, "The schedule, active.", ScheduleView),),
        errors=_SCHEDULE_ERRORS | {409, 422},
    )
)
async def resume_schedule(request: web.Request) -> web.Response:
    """Fire again from the next fire time after now: 200 with the schedule (idempotent)."""
    schedule = await _schedules(request, Permission.OPERATE).resume(_name(request))
    return success_response(_view(schedule))


@schedule_routes.post("/schedules/{name}/run")
@documented(
    Operation(
        "run_schedule",
        "schedules",
        "Fire one task now",
        "Needs an admin. The timetable does not move.",
        (
            Reply(
                202,
                "Submitted; `Location` is the task.",
                ScheduleFiredView,
                headers={"Location": True},
            ),
        ),
        errors=_SCHEDULE_ERRORS | {422, 429},
    )
)
async def run_schedule(request: web.Request) -> web.Response:
    """Fire one task now without moving the timetable: 202 with its id and Location."""
    task = await _schedules(request, Permission.SUBMIT).run_now(_name(request))
    data = ScheduleFiredView(task_id=task.id).model_dump(mode="json")
    return success_response(data, status=202, headers={"Location": task_location(request, task.id)})
