"""The API's routes: request decoding, one handler per endpoint, nothing else.

Handlers turn HTTP into service calls and service results into envelopes. Every refusal is an
exception (:class:`ApiError` for malformed HTTP, the service's own errors otherwise) answered by
the error middleware, so no handler builds an error response itself.
"""

from __future__ import annotations

import re
from typing import Any, Final, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from cam_tasks.domain import InvalidParamsError, Task
from cam_tasks.executor import validation_details
from cam_tasks.service import MAX_IDEMPOTENCY_KEY_LENGTH, TaskService, TaskSubmission
from cam_tasks.service.watch import TaskWatcher
from cam_tasks.web.auth import principal_of
from cam_tasks.web.conditional import (
    CACHE_CONTROL,
    etag_of,
    if_none_match,
    matches,
    opaque_tag,
)
from cam_tasks.web.envelope import success_response
from cam_tasks.web.errors import ApiError
from cam_tasks.web.limits import LIMITER_KEY
from cam_tasks.web.schemas import (
    LIST_QUERY_KEYS,
    SUBMIT_BATCH,
    TASK_QUERY_KEYS,
    ListTasksQuery,
    SubmitTaskRequest,
    SubmittedView,
    TaskQuery,
    TaskView,
)

__all__ = ["MAX_BODY_BYTES_KEY", "SERVICE_KEY", "WATCHER_KEY", "routes", "task_id_of"]

#: The :class:`TaskService` the handlers call.
SERVICE_KEY: Final = web.AppKey("cam_tasks.service", TaskService)
#: Largest request body accepted, in bytes.
MAX_BODY_BYTES_KEY: Final = web.AppKey("cam_tasks.max_body_bytes", int)
#: The :class:`TaskWatcher` long polls and event streams wait on.
WATCHER_KEY: Final = web.AppKey("cam_tasks.watcher", TaskWatcher)

IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
_TASK_ROUTE: Final = "cam_tasks.task"
# Task ids are UUIDs; anything not shaped like an id is refused before it reaches a query.
TASK_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
#: Body fields a client may send but that are never taken from it: tasks record who submitted
#: them, and where, from the authenticated principal.
IGNORED_BODY_FIELDS: Final = frozenset({"created_by", "project_id"})

routes = web.RouteTableDef()


# -- request decoding -------------------------------------------------------------------------


def _is_json(request: web.Request) -> bool:
    media_type = request.content_type  # "application/octet-stream" when the header is missing
    json_type = media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )
    charset = request.charset
    return json_type and (charset is None or charset.lower() in {"utf-8", "utf8"})


async def _read_body(request: web.Request) -> bytes:
    # The host's client_max_size belongs to the host app, not to this sub-app, so the limit is
    # enforced here: never buffer more than one byte past it, whatever Content-Length says.
    limit = request.app[MAX_BODY_BYTES_KEY]
    too_large = ApiError(413, "payload_too_large", "request body too large", [{"max_bytes": limit}])
    declared = request.content_length
    if declared is not None and declared > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(limit + 1 - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise too_large


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object: 415 unless JSON (UTF-8), 413 when too large, 400 when
    malformed, 422 when valid JSON but not an object."""
    return _object(await _json_body(request))


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidParamsError(
            "request body must be a JSON object",
            [{"loc": ["body"], "msg": "Input should be a JSON object", "type": "model_type"}],
        )
    return value


async def _json_body(request: web.Request) -> Any:
    """The request body as JSON: 415 unless JSON (UTF-8), 413 when too large, 400 when
    malformed."""
    if not _is_json(request):
        raise ApiError(
            415,
            "unsupported_media_type",
            "request body must be application/json (UTF-8)",
            [{"content_type": request.content_type}],
        )
    raw = await _read_body(request)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}" if raw.strip() else "empty body"
        raise ApiError(
            400,
            "bad_request",
            "request body is not valid JSON",
            [{"loc": ["body"], "msg": f"invalid JSON ({where})", "type": "json_invalid"}],
        ) from None
    return value


def task_id_of(request: web.Request) -> str:
    """The ``{task_id}`` of the route: 400 unless it is shaped like a task id."""
    task_id = request.match_info["task_id"]
    if not TASK_ID_PATTERN.fullmatch(task_id):
        raise ApiError(
            400,
            "bad_request",
            "malformed task id",
            [
                {
                    "loc": ["path", "task_id"],
                    "msg": "must be 1 to 128 letters, digits, '.', '_', ':' or '-'",
                    "type": "task_id_invalid",
                }
            ],
        )
    return task_id


def _idempotency_key(request: web.Request) -> str | None:
    values = request.headers.getall(IDEMPOTENCY_HEADER, [])
    if not values:
        return None
    key = values[0]
    if len(values) > 1 or not 0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable():
        raise ApiError(
            400,
            "bad_request",
            "malformed Idempotency-Key header",
            [
                {
                    "loc": ["header", IDEMPOTENCY_HEADER],
                    "msg": f"must be one value of 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} "
                    "printable characters",
                    "type": "header_invalid",
                }
            ],
        )
    return key


QueryModel = TypeVar("QueryModel", bound=BaseModel)


def _list_query(request: web.Request) -> ListTasksQuery:
    return parse_query(request, ListTasksQuery, LIST_QUERY_KEYS)


def parse_query(
    request: web.Request, model: type[QueryModel], allowed: frozenset[str]
) -> QueryModel:
    """The query string parsed into ``model``: 400 naming every unknown, repeated or invalid
    parameter."""
    query = request.query
    problems: list[dict[str, Any]] = []
    unknown = sorted(set(query) - allowed)
    if unknown:
        # Also catches bracketed keys (status[$ne]=…): they are never parsed into structures.
        problems.append(
            {
                "loc": ["query"],
                "msg": f"unknown query parameters: {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(allowed))}",
                "type": "unknown_parameter",
                "unknown": unknown,
            }
        )
    for key in sorted(allowed):
        if len(query.getall(key, [])) > 1:
            problems.append(
                {"loc": ["query", key], "msg": "must be given once", "type": "repeated"}
            )
    if not problems:
        try:
            return model.model_validate(dict(query))
        except ValidationError as exc:
            problems = validation_details(exc, ("query",))
    raise ApiError(400, "bad_request", "malformed query", problems)


# -- responses --------------------------------------------------------------------------------


def _service(request: web.Request) -> TaskService:
    return request.app[SERVICE_KEY]


def task_location(request: web.Request, task_id: str) -> str:
    # Built from this app's router, so it carries whatever prefix the host mounted us under.
    return str(request.app.router[_TASK_ROUTE].url_for(task_id=task_id))


def _task_view(request: web.Request, task: Task) -> dict[str, Any]:
    return TaskView.dump(task, now=_service(request).clock.now())


def _submitted(request: web.Request, task: Task) -> web.Response:
    data = SubmittedView(task_id=task.id).model_dump(mode="json")
    return success_response(data, status=202, headers={"Location": task_location(request, task.id)})


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
    body = await read_json_object(request)
    params = {k: v for k, v in body.items() if k not in IGNORED_BODY_FIELDS}
    key = _idempotency_key(request)
    try:
        request.app[LIMITER_KEY].check_params(params, ("params",))
        task = await _service(request).submit(
            task_type, params, idempotency_key=key, principal=principal
        )
    except InvalidParamsError as exc:
        raise InvalidParamsError(str(exc), _strip_params_loc(exc.details)) from None
    return _submitted(request, task)


# -- handlers ---------------------------------------------------------------------------------


@routes.post("/tasks/sync-assets")
async def submit_sync_assets(request: web.Request) -> web.Response:
    """Submit ``sync_assets``; the body is its params. 202 + Location."""
    return await _submit_params_body(request, "sync_assets")


@routes.post("/tasks/discover-assets")
async def submit_discover_assets(request: web.Request) -> web.Response:
    """Submit ``discover_assets``; the body is its params. 202 + Location."""
    return await _submit_params_body(request, "discover_assets")


@routes.post("/tasks")
async def submit_task(request: web.Request) -> web.Response:
    """Submit a task of any registered type with its options. 202 + Location.

    A JSON array of such objects submits them all in one store round trip (see
    :func:`_submit_batch`)."""
    principal = principal_of(request)
    request.app[LIMITER_KEY].submitted(principal.name)
    body = await _json_body(request)
    if isinstance(body, list):
        return await _submit_batch(request, body)
    body = _object(body)
    header_key = _idempotency_key(request)
    try:
        submission = SubmitTaskRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidParamsError("invalid request body", validation_details(exc)) from None
    options = submission.options()
    key = options.pop("idempotency_key", None)
    if header_key is not None and key is not None and header_key != key:
        raise InvalidParamsError(
            "conflicting idempotency keys",
            [
                {
                    "loc": ["idempotency_key"],
                    "msg": f"differs from the {IDEMPOTENCY_HEADER} header",
                    "type": "idempotency_key_conflict",
                }
            ],
        )
    request.app[LIMITER_KEY].check_params(submission.params, ("params",))
    task = await _service(request).submit(
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
    items' order, and no Location. Each item counts as one submit for the rate limit; an
    ``Idempotency-Key`` header is refused (it cannot name several tasks: give each item its
    own ``idempotency_key``)."""
    principal = principal_of(request)
    limiter = request.app[LIMITER_KEY]
    if _idempotency_key(request) is not None:
        raise InvalidParamsError(
            "an Idempotency-Key header cannot name a batch",
            [
                {
                    "loc": ["header", IDEMPOTENCY_HEADER],
                    "msg": "give each task of a batch its own idempotency_key",
                    "type": "idempotency_key_batch",
                }
            ],
        )
    for item in items:
        _object(item)  # an array of anything else is refused like any body that is no object
    try:
        submissions = SUBMIT_BATCH.validate_python(items)
    except ValidationError as exc:
        raise InvalidParamsError("invalid request body", validation_details(exc)) from None
    for index, submission in enumerate(submissions):
        limiter.check_params(submission.params, (index, "params"))
    for _ in submissions[1:]:  # the first was counted with the request
        limiter.submitted(principal.name)
    tasks = await _service(request).submit_many(
        [TaskSubmission(item.type, item.params, **item.options()) for item in submissions],
        principal=principal,
    )
    data = [SubmittedView(task_id=task.id).model_dump(mode="json") for task in tasks]
    return success_response(data, status=202)


@routes.get("/tasks")
async def list_tasks(request: web.Request) -> web.Response:
    """Filter and page tasks, newest first: ``data: {tasks, total}``."""
    query = _list_query(request)
    service = _service(request)
    if query.type is not None and query.type not in service.registry:
        raise ApiError(
            400,
            "bad_request",
            "malformed query",
            [
                {
                    "loc": ["query", "type"],
                    "msg": "no executor is registered for this task type",
                    "type": "unknown_task_type",
                    "known": sorted(service.registry.types),
                }
            ],
        )
    page = await service.list(
        query.to_filter(), offset=query.offset, limit=query.limit, principal=principal_of(request)
    )
    now = _service(request).clock.now()
    # TaskListView's JSON, built directly (see TaskView.dump).
    tasks = [TaskView.dump(task, now=now) for task in page.tasks]
    return success_response({"tasks": tasks, "total": page.total})


@routes.get("/tasks/{task_id}", name=_TASK_ROUTE)
async def get_task(request: web.Request) -> web.Response:
    """One task, with a weak ``ETag``; ``If-None-Match`` answers 304 while it still matches.

    ``wait_s`` (0 < N <= 60) makes it a long poll: the answer comes as soon as the task differs
    from the client's ``If-None-Match`` (without one: from the task as it was when the request
    arrived), or after ``wait_s`` with the task as it is then (304 if the client's tag still
    matches).
    """
    task_id = task_id_of(request)
    query = parse_query(request, TaskQuery, TASK_QUERY_KEYS)
    client_tags = if_none_match(request.headers.get("If-None-Match"))
    service = _service(request)
    task = await service.get(task_id, principal=principal_of(request))
    view = _task_view(request, task)
    etag = etag_of(view)
    if query.wait_s is not None and (client_tags is None or matches(etag, client_tags)):
        known = client_tags if client_tags is not None else frozenset({opaque_tag(etag)})

        def changed(candidate: Task) -> bool:
            return not matches(etag_of(_task_view(request, candidate)), known)

        task = await request.app[WATCHER_KEY].wait(task_id, until=changed, timeout_s=query.wait_s)
        view = _task_view(request, task)
        etag = etag_of(view)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if matches(etag, client_tags):
        return web.Response(status=304, headers=headers)
    return success_response(view, headers=headers)


@routes.post("/tasks/{task_id}/cancel")
async def cancel_task(request: web.Request) -> web.Response:
    """Cancel a pending task, or ask a running one to stop: 200 with the task."""
    task = await _service(request).cancel(task_id_of(request), principal=principal_of(request))
    return success_response(_task_view(request, task))


@routes.post("/tasks/{task_id}/retry")
async def retry_task(request: web.Request) -> web.Response:
    """Re-run a failed or cancelled task: 202 with the task (pending again) + Location."""
    principal = principal_of(request)
    request.app[LIMITER_KEY].submitted(principal.name)
    task = await _service(request).retry(task_id_of(request), principal=principal)
    return success_response(
        _task_view(request, task), status=202, headers={"Location": task_location(request, task.id)}
    )


@routes.delete("/tasks/{task_id}")
async def delete_task(request: web.Request) -> web.Response:
    """Delete a finished task: 200 with ``data: null`` (409 while pending or running)."""
    await _service(request).delete(task_id_of(request), principal=principal_of(request))
    return success_response(None)
