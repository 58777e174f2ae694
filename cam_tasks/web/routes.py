"""The API's routes: request decoding, one handler per endpoint, nothing else.

Handlers turn HTTP into service calls and service results into envelopes. Every refusal is an
exception (:class:`ApiError` for malformed HTTP, the service's own errors otherwise) answered by
the error middleware, so no handler builds an error response itself.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from aiohttp import web
from pydantic import ValidationError

from cam_tasks.domain import InvalidParamsError, Task
from cam_tasks.executor import validation_details
from cam_tasks.service import MAX_IDEMPOTENCY_KEY_LENGTH, TaskService
from cam_tasks.web.envelope import success_response
from cam_tasks.web.errors import ApiError
from cam_tasks.web.schemas import (
    LIST_QUERY_KEYS,
    ListTasksQuery,
    SubmitTaskRequest,
    SubmittedView,
    TaskListView,
    TaskView,
)

__all__ = ["MAX_BODY_BYTES_KEY", "SERVICE_KEY", "routes"]

#: The :class:`TaskService` the handlers call.
SERVICE_KEY: Final = web.AppKey("cam_tasks.service", TaskService)
#: Largest request body accepted, in bytes.
MAX_BODY_BYTES_KEY: Final = web.AppKey("cam_tasks.max_body_bytes", int)

IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
_TASK_ROUTE: Final = "cam_tasks.task"

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


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object: 415 unless JSON (UTF-8), 413 when too large, 400 when
    malformed, 422 when valid JSON but not an object."""
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
    if not isinstance(value, dict):
        raise InvalidParamsError(
            "request body must be a JSON object",
            [{"loc": ["body"], "msg": "Input should be a JSON object", "type": "model_type"}],
        )
    return value


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


def _list_query(request: web.Request) -> ListTasksQuery:
    query = request.query
    problems: list[dict[str, Any]] = []
    unknown = sorted(set(query) - LIST_QUERY_KEYS)
    if unknown:
        # Also catches bracketed keys (status[$ne]=…): they are never parsed into structures.
        problems.append(
            {
                "loc": ["query"],
                "msg": f"unknown query parameters: {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(LIST_QUERY_KEYS))}",
                "type": "unknown_parameter",
                "unknown": unknown,
            }
        )
    for key in sorted(LIST_QUERY_KEYS):
        if len(query.getall(key, [])) > 1:
            problems.append(
                {"loc": ["query", key], "msg": "must be given once", "type": "repeated"}
            )
    if not problems:
        try:
            return ListTasksQuery.model_validate(dict(query))
        except ValidationError as exc:
            problems = validation_details(exc, ("query",))
    raise ApiError(400, "bad_request", "malformed query", problems)


# -- responses --------------------------------------------------------------------------------


def _service(request: web.Request) -> TaskService:
    return request.app[SERVICE_KEY]


def _location(request: web.Request, task_id: str) -> str:
    # Built from this app's router, so it carries whatever prefix the host mounted us under.
    return str(request.app.router[_TASK_ROUTE].url_for(task_id=task_id))


def _task_view(request: web.Request, task: Task) -> dict[str, Any]:
    view = TaskView.of(task, now=_service(request).clock.now())
    return view.model_dump(mode="json")


def _submitted(request: web.Request, task: Task) -> web.Response:
    data = SubmittedView(task_id=task.id).model_dump(mode="json")
    return success_response(data, status=202, headers={"Location": _location(request, task.id)})


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
    params = await _json_object(request)
    key = _idempotency_key(request)
    try:
        task = await _service(request).submit(task_type, params, idempotency_key=key)
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
    """Submit a task of any registered type with its options. 202 + Location."""
    body = await _json_object(request)
    header_key = _idempotency_key(request)
    try:
        submission = SubmitTaskRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidParamsError("invalid request body", validation_details(exc)) from None
    key = submission.idempotency_key
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
    task = await _service(request).submit(
        submission.type,
        submission.params,
        priority=submission.priority,
        run_at=submission.run_at,
        delay_s=submission.delay_s,
        max_retries=submission.max_retries,
        timeout_s=submission.timeout_s,
        idempotency_key=key if key is not None else header_key,
    )
    return _submitted(request, task)


@routes.get("/tasks")
async def list_tasks(request: web.Request) -> web.Response:
    """Filter and page tasks, newest first: ``data: {tasks, total}``."""
    query = _list_query(request)
    page = await _service(request).list(query.to_filter(), offset=query.offset, limit=query.limit)
    now = _service(request).clock.now()
    view = TaskListView(tasks=[TaskView.of(task, now=now) for task in page.tasks], total=page.total)
    return success_response(view.model_dump(mode="json"))


@routes.get("/tasks/{task_id}", name=_TASK_ROUTE)
async def get_task(request: web.Request) -> web.Response:
    """One task."""
    task = await _service(request).get(request.match_info["task_id"])
    return success_response(_task_view(request, task))


@routes.post("/tasks/{task_id}/cancel")
async def cancel_task(request: web.Request) -> web.Response:
    """Cancel a pending task, or ask a running one to stop: 200 with the task."""
    task = await _service(request).cancel(request.match_info["task_id"])
    return success_response(_task_view(request, task))


@routes.post("/tasks/{task_id}/retry")
async def retry_task(request: web.Request) -> web.Response:
    """Re-run a failed or cancelled task: 202 with the task (pending again) + Location."""
    task = await _service(request).retry(request.match_info["task_id"])
    return success_response(
        _task_view(request, task), status=202, headers={"Location": _location(request, task.id)}
    )


@routes.delete("/tasks/{task_id}")
async def delete_task(request: web.Request) -> web.Response:
    """Delete a finished task: 200 with ``data: null`` (409 while pending or running)."""
    await _service(request).delete(request.match_info["task_id"])
    return success_response(None)
