"""The submit routes: ``POST /tasks/sync-assets``, ``POST /tasks/discover-assets`` and
``POST /tasks`` (one task, or a JSON array of them), each with its OpenAPI description.

Each answers 202 as soon as the task is stored, with ``data: {task_id, message}`` and the task's
``Location``. Every submit counts against the principal's rate (one per task of a batch);
``Idempotency-Key`` (or a body's ``idempotency_key``) makes a repeated submit return the first
task; ``created_by`` and ``project_id`` come from the principal, and a body naming them is
refused.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from cam_tasks.domain import InvalidParamsError
from cam_tasks.executor import validation_details
from cam_tasks.service import Submitted, TaskService, TaskSubmission
from cam_tasks.web.auth import principal_of
from cam_tasks.web.envelope import success_response
from cam_tasks.web.keys import SERVICE_KEY
from cam_tasks.web.limits import LIMITER_KEY
from cam_tasks.web.operations import ExecutorParams, OneOf, Operation, Reply, documented
from cam_tasks.web.requests import (
    IDEMPOTENCY_HEADER,
    idempotency_key,
    idempotency_key_problems,
    json_body,
    json_object,
    principal_field_problems,
    read_json_object,
)
from cam_tasks.web.schemas import SUBMIT_BATCH, SubmitTaskRequest, SubmittedView
from cam_tasks.web.views import task_location

__all__ = ["submit_routes"]

submit_routes = web.RouteTableDef()

_SUBMITTED_MESSAGE: Final = SubmittedView.model_fields["message"].default

_SUBMITTED = Reply(
    202,
    "Submitted: the task is stored and pending; `Location` is the task.",
    SubmittedView,
    headers={"Location": True},
)
_JOINED = Reply(
    200,
    "Deduplicated: a pending or running task of the caller's project already holds the "
    "submit's `unique_key`; `data.task_id` is that task (`deduplicated: true`), nothing new "
    "was stored. `Location` is the task.",
    SubmittedView,
    headers={"Location": True},
)
_SUBMIT_DESCRIPTION = (
    "The body *is* the `{type}` executor's params; field errors are located relative to it "
    '(`loc: ["asset_types"]`). A task records `created_by` and `project_id` from the '
    "authenticated principal: a body naming them is refused (422). " + "{idempotency}"
)
_IDEMPOTENCY_DESCRIPTION = (
    "`Idempotency-Key` makes a repeated submit return the task of the first (within the "
    "retention, per principal): the only way to retry safely after a timeout or a 503."
)


def _params_body_operation(operation_id: str, task_type: str) -> Operation:
    return Operation(
        operation_id,
        "tasks",
        f"Submit a {task_type} task",
        _SUBMIT_DESCRIPTION.format(type=task_type, idempotency=_IDEMPOTENCY_DESCRIPTION),
        (_SUBMITTED, _JOINED),
        errors=frozenset({429, 503}),
        body=ExecutorParams(task_type),
        headers=(IDEMPOTENCY_HEADER,),
    )


def _service(request: web.Request) -> TaskService:
    return request.app[SERVICE_KEY]


def _submitted(request: web.Request, submitted: Submitted) -> web.Response:
    """202 for a stored task; 200 with ``deduplicated: true`` when an active task already held
    the submit's unique key (that task is the answer)."""
    task = submitted.task
    # SubmittedView's JSON, built directly (the submit tests read every field of it).
    if submitted.deduplicated:
        view = _submitted_view(task.id, "an active task holds this unique_key", deduplicated=True)
        status = 200
    else:
        view, status = _submitted_view(task.id), 202
    location = {"Location": task_location(request, task.id)}
    return success_response(view, status=status, headers=location)


def _submitted_view(
    task_id: str, message: str = _SUBMITTED_MESSAGE, *, deduplicated: bool = False
) -> dict[str, Any]:
    """``SubmittedView(...).model_dump(mode="json")``, without a model per submit."""
    return {"task_id": task_id, "message": message, "deduplicated": deduplicated}


def _strip_params_loc(details: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stripped = []
    for detail in details:
        loc = detail.get("loc")
        if isinstance(loc, list) and loc[:1] == ["params"]:
            detail = {**detail, "loc": loc[1:] or ["body"]}
        stripped.append(detail)
    return stripped


async def _submit_params_body(request: web.Request, task_type: str) -> web.Response:
    # The body *is* the params here: report field locations relative to the body.
    principal = principal_of(request)
    request.app[LIMITER_KEY].submitted(principal.name)
    params = await read_json_object(request)
    key = idempotency_key(request)
    problems = principal_field_problems(params, ())
    if problems:
        raise InvalidParamsError("invalid request body", problems)
    try:
        request.app[LIMITER_KEY].check_params(params, ("params",))
        task = await _service(request).enqueue(
            task_type, params, idempotency_key=key, principal=principal
        )
    except InvalidParamsError as exc:
        raise InvalidParamsError(str(exc), _strip_params_loc(exc.details)) from None
    return _submitted(request, task)


@submit_routes.post("/tasks/sync-assets")
@documented(_params_body_operation("submit_sync_assets", "sync_assets"))
async def submit_sync_assets(request: web.Request) -> web.Response:
    """Submit ``sync_assets``; the body is its params. 202 + Location."""
    return await _submit_params_body(request, "sync_assets")


@submit_routes.post("/tasks/discover-assets")
@documented(_params_body_operation("submit_discover_assets", "discover_assets"))
async def submit_discover_assets(request: web.Request) -> web.Response:
    """Submit ``discover_assets``; the body is its params. 202 + Location."""
    return await _submit_params_body(request, "discover_assets")


@submit_routes.post("/tasks")
@documented(
    Operation(
        "submit_task",
        "tasks",
        "Submit a task of any registered type, or a batch of them",
        'One object submits one task (`params` are the type\'s, under `["params", …]` in field '
        "errors); `Location` is the task. A JSON array of 1 to 1000 such objects submits them "
        "all in one store round trip: all are validated first (nothing is stored when one is "
        "refused; `loc` starts with the item's index), and the answer lists `{task_id, "
        "message}` in the items' order, without `Location`. An item's own `idempotency_key` "
        "is its key; the `Idempotency-Key` header is the key of every task that names none "
        "(the one task, or item *i* of a batch as `<header>#<i>`), so a whole batch is retried "
        "safely with one header. `created_by` and `project_id` are recorded from the "
        "authenticated principal and refused in a body. `run_at` and `delay_s` are "
        "exclusive; `priority` is `low | normal | high | urgent` or `0..3`.",
        (
            Reply(
                202,
                "Submitted: one task (with `Location`) or, for an array, one entry per item.",
                OneOf((SubmittedView, TypeAdapter(list[SubmittedView]))),
                headers={"Location": False},
            ),
            _JOINED,
        ),
        errors=frozenset({429, 503}),
        body=OneOf((SubmitTaskRequest, SUBMIT_BATCH)),
        headers=(IDEMPOTENCY_HEADER,),
    )
)
async def submit_task(request: web.Request) -> web.Response:
    """Submit a task of any registered type with its options. 202 + Location.

    A JSON array of such objects submits them all in one store round trip (see
    :func:`_submit_batch`)."""
    principal = principal_of(request)
    request.app[LIMITER_KEY].submitted(principal.name)
    body = await json_body(request)
    if isinstance(body, list):
        return await _submit_batch(request, body)
    body = json_object(body)
    header_key = idempotency_key(request)
    problems = principal_field_problems(body, ())
    if problems:
        raise InvalidParamsError("invalid request body", problems)
    try:
        submission = SubmitTaskRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidParamsError("invalid request body", validation_details(exc)) from None
    options = submission.options()
    key = options.pop("idempotency_key", None)
    problems = idempotency_key_problems(key, ())
    if problems:
        raise InvalidParamsError("invalid request body", problems)
    request.app[LIMITER_KEY].check_params(submission.params, ("params",))
    task = await _service(request).enqueue(
        submission.type,
        submission.params,
        idempotency_key=key if key is not None else header_key,
        principal=principal,
        **options,
    )
    return _submitted(request, task)


async def _submit_batch(request: web.Request, items: list[Any]) -> web.Response:
    """``POST /tasks`` with an array of 1 to ``MAX_BATCH_SIZE`` task objects: all validated
    first (422 listing every problem, ``loc`` starting with the item's index; nothing stored),
    then stored with one ``insert_many``. 202 with ``data: [{task_id, message}, …]`` in the
    items' order, and no Location. Each item counts as one submit for the rate limit. An
    item's own ``idempotency_key`` is its key; with an ``Idempotency-Key`` header, item *i*
    without one of its own is keyed ``<header>#<i>``, so the same batch sent again returns the
    same tasks."""
    principal = principal_of(request)
    limiter = request.app[LIMITER_KEY]
    header_key = idempotency_key(request)
    problems = []
    for index, item in enumerate(items):
        # An array of anything else is refused like any body that is no object.
        problems += principal_field_problems(json_object(item), (index,))
    if problems:
        raise InvalidParamsError("invalid request body", problems)
    try:
        submissions = SUBMIT_BATCH.validate_python(items)
    except ValidationError as exc:
        raise InvalidParamsError("invalid request body", validation_details(exc)) from None
    problems = [
        problem
        for index, submission in enumerate(submissions)
        for problem in idempotency_key_problems(
            submission.options().get("idempotency_key"), (index,)
        )
    ]
    if problems:
        raise InvalidParamsError("invalid request body", problems)
    for index, submission in enumerate(submissions):
        limiter.check_params(submission.params, (index, "params"))
    for _ in submissions[1:]:  # the first was counted with the request
        limiter.submitted(principal.name)
    batch = []
    for index, item in enumerate(submissions):
        options = item.options()
        if header_key is not None:
            options.setdefault("idempotency_key", f"{header_key}#{index}")
        batch.append(TaskSubmission(item.type, item.params, **options))
    tasks = await _service(request).submit_many(batch, principal=principal)
    data = [_submitted_view(task.id) for task in tasks]
    return success_response(data, status=202)
