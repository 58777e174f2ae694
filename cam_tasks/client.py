"""An HTTP client of the cam_tasks API: what the ``cam-tasks`` commands use, usable from scripts.

It knows the API's wire format (paths, the envelope, bearer tokens) and nothing of the server's
code: tasks come back as the JSON the API sends (``dict``). Every error the API answers becomes
:class:`ApiResponseError` with the envelope's ``msg`` and ``details``; a service that cannot be
reached becomes :class:`ServiceUnreachableError`.

Submits are safe to retry: every submit carries an ``Idempotency-Key`` (the caller's, else a
fresh UUID), and :meth:`CamTasksClient.submit` retries an answer that may hide a stored task
(no answer, 502/503/504) or that asks to come back later (429) with that same key, so the
service stores the task at most once.

::

    async with CamTasksClient("http://127.0.0.1:8001", token=token) as client:
        task_id = await client.submit("sync_assets", {"provider": "aliyun", ...})
        async for task in client.watch(task_id):
            print(task["status"], task["progress"])
"""

from __future__ import annotations

import asyncio
import builtins
import errno
import os
import uuid
from collections.abc import AsyncIterator, Collection, Mapping
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import quote, urlsplit

import aiohttp

from cam_tasks._version import __version__
from cam_tasks.domain import CamTasksError

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_URL",
    "IDEMPOTENCY_HEADER",
    "TERMINAL",
    "ApiResponseError",
    "CamTasksClient",
    "ServiceUnreachableError",
]

DEFAULT_URL: Final = "http://127.0.0.1:8001"
DEFAULT_PREFIX: Final = "/api/v1/cam"
#: Statuses a task does not leave on its own.
TERMINAL: Final = frozenset({"completed", "failed", "cancelled"})
# What a watch compares to decide that the task changed (``duration`` counts up by itself).
_VISIBLE: Final = ("status", "progress", "message", "step", "total_steps", "attempts", "error")
_NOT_MODIFIED: Final = 304
#: The header that makes a submit idempotent (the API's ``Idempotency-Key``).
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
# Answers after which a submit may be sent again with its key: the service was briefly unable
# (the task may or may not have been stored) or asks to come back later (nothing was stored).
_RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})


class ApiResponseError(CamTasksError):
    """The API answered an error envelope (or, from something in between, a non-JSON error).

    ``status`` is the HTTP status, ``error`` the machine code, ``msg`` and ``details`` what the
    envelope says; ``retry_after_s`` the answer's ``Retry-After`` in seconds, if it had one.
    """

    def __init__(
        self,
        status: int,
        error: str,
        msg: str,
        details: builtins.list[Any] | None = None,
        *,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"{status} {error}: {msg}")
        self.status = status
        self.error = error
        self.msg = msg
        self.details = list(details or [])
        self.retry_after_s = retry_after_s


class ServiceUnreachableError(CamTasksError):
    """No answer from ``url``: the service is down, the address is wrong, or it timed out."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach {url}: {reason}")
        self.url = url
        self.reason = reason


def _quote(task_id: str) -> str:
    return quote(task_id, safe="")


def _retry_after_s(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:  # an HTTP date: not sent by this API
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def _unreachable_reason(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        # "connection refused" rather than asyncio's "connect call failed ('127.0.0.1', 1)".
        os_error, code = exc.os_error, exc.os_error.errno
        if code is not None and code in errno.errorcode:
            return os.strerror(code).lower()
        if os_error.strerror:  # e.g. a name that does not resolve
            return os_error.strerror.lower()
    return str(exc) or type(exc).__name__


class CamTasksClient:
    """One HTTP session to the API at ``url`` + ``prefix``.

    ``url`` must be an absolute http(s) URL (``ValueError`` otherwise). ``token`` is sent as
    ``Authorization: Bearer <token>``. ``timeout_s`` bounds each request (a long poll gets its
    wait on top). A submit is sent up to ``submit_attempts`` times (see :meth:`submit`), waiting
    ``retry_delay_s``, doubled each time, in between (or the answer's ``Retry-After``, at most
    ``max_retry_delay_s``). Use ``async with``, or call :meth:`close`.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = DEFAULT_PREFIX,
        token: str | None = None,
        timeout_s: float = 30.0,
        submit_attempts: int = 3,
        retry_delay_s: float = 0.5,
        max_retry_delay_s: float = 10.0,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError("timeout_s must be > 0")
        if submit_attempts < 1:
            raise ValueError("submit_attempts must be >= 1")
        if retry_delay_s < 0 or max_retry_delay_s < 0:
            raise ValueError("retry delays must be >= 0")
        parsed = urlsplit(url)  # ValueError for a malformed one, too
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.submit_attempts = submit_attempts
        self.retry_delay_s = retry_delay_s
        self.max_retry_delay_s = max_retry_delay_s
        self.url = url.rstrip("/")
        self.base = self.url + "/" + prefix.strip("/") if prefix.strip("/") else self.url
        self.timeout_s = timeout_s
        headers = {"User-Agent": f"cam-tasks/{__version__}", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._headers = headers
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session. Idempotent."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers)
        return self._session

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        extra_timeout_s: float = 0.0,
    ) -> tuple[int, Any, Mapping[str, str]]:
        """(status, envelope ``data`` or None, headers). Raises on every error answer."""
        url = self.base + path
        timeout = aiohttp.ClientTimeout(total=self.timeout_s + extra_timeout_s)
        try:
            async with self._open().request(
                method, url, json=json, params=params, headers=headers, timeout=timeout
            ) as response:
                status = response.status
                body = await response.read()
                reply_headers = dict(response.headers)
                try:
                    envelope = await response.json(content_type=None) if body else None
                except ValueError:
                    envelope = None
                reason = response.reason or ""
        except aiohttp.ClientError as exc:
            # Refused, reset, or an answer that is not HTTP: no usable answer either way.
            raise ServiceUnreachableError(self.url, _unreachable_reason(exc)) from None
        except TimeoutError:
            raise ServiceUnreachableError(self.url, "timed out") from None
        if status >= 400:
            retry_after_s = _retry_after_s(reply_headers.get("Retry-After"))
            if isinstance(envelope, dict) and isinstance(envelope.get("data"), dict):
                data = envelope["data"]
                raise ApiResponseError(
                    status,
                    str(data.get("error", "http_error")),
                    str(envelope.get("msg", reason)),
                    data.get("details") if isinstance(data.get("details"), list) else [],
                    retry_after_s=retry_after_s,
                )
            raise ApiResponseError(
                status, "http_error", reason.lower() or "error", retry_after_s=retry_after_s
            )
        data = envelope.get("data") if isinstance(envelope, dict) else None
        return status, data, reply_headers

    # -- tasks ----------------------------------------------------------------------------------

    async def submit(
        self,
        task_type: str,
        params: Mapping[str, Any] | None = None,
        *,
        priority: int | str | None = None,
        delay_s: float | None = None,
        run_at: str | None = None,
        max_retries: int | None = None,
        timeout_s: float | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Submit a task of any registered type (``POST /tasks``); returns its id.

        Sent with ``Idempotency-Key: idempotency_key``, or a fresh UUID when none is given, and
        sent again with the same key (up to ``submit_attempts`` in all) when the service could
        not be reached or answered 429, 502, 503 or 504: the task is stored at most once however
        many of those sends reached it, and the id returned is the stored task's. The last error
        is raised when every attempt failed. A caller that retries a submit itself must pass
        the same ``idempotency_key`` each time to keep that guarantee.
        """
        body: dict[str, Any] = {"type": task_type, "params": dict(params or {})}
        options = {
            "priority": priority,
            "delay_s": delay_s,
            "run_at": run_at,
            "max_retries": max_retries,
            "timeout_s": timeout_s,
        }
        body.update({key: value for key, value in options.items() if value is not None})
        key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
        headers = {IDEMPOTENCY_HEADER: key}
        attempt, backoff_s = 1, self.retry_delay_s
        while True:
            try:
                _, data, _ = await self._call("POST", "/tasks", json=body, headers=headers)
                return str(data["task_id"])
            except (ServiceUnreachableError, ApiResponseError) as exc:
                retryable = (
                    isinstance(exc, ServiceUnreachableError) or exc.status in _RETRY_STATUSES
                )
                if not retryable or attempt >= self.submit_attempts:
                    raise
                asked_s = exc.retry_after_s if isinstance(exc, ApiResponseError) else None
                wait_s = asked_s if asked_s is not None else backoff_s
            await asyncio.sleep(min(wait_s, self.max_retry_delay_s))
            attempt, backoff_s = attempt + 1, backoff_s * 2

    async def get(self, task_id: str) -> dict[str, Any]:
        """One task as the API shows it."""
        _, data, _ = await self._call("GET", f"/tasks/{_quote(task_id)}")
        return dict(data)

    async def list(
        self,
        *,
        task_type: str | None = None,
        statuses: Collection[str] | None = None,
        offset: int = 0,
        limit: int = 20,
        queue: str | None = None,
    ) -> dict[str, Any]:
        """One page, newest first: ``{"tasks": [...], "total": n}``."""
        params = {"offset": str(offset), "limit": str(limit)}
        if task_type is not None:
            params["type"] = task_type
        if queue is not None:
            params["queue"] = queue
        if statuses:
            params["status"] = ",".join(statuses)
        _, data, _ = await self._call("GET", "/tasks", params=params)
        return dict(data)

    async def cancel(self, task_id: str) -> dict[str, Any]:
        """Cancel a pending task, or ask a running one to stop; returns the task."""
        _, data, _ = await self._call("POST", f"/tasks/{_quote(task_id)}/cancel")
        return dict(data)

    async def retry(self, task_id: str) -> dict[str, Any]:
        """Re-run a failed or cancelled task; returns the task (pending again)."""
        _, data, _ = await self._call("POST", f"/tasks/{_quote(task_id)}/retry")
        return dict(data)

    async def delete(self, task_id: str) -> None:
        """Delete a finished task."""
        await self._call("DELETE", f"/tasks/{_quote(task_id)}")

    # -- schedules (admin only) -----------------------------------------------------------------

    async def list_schedules(
        self, *, active: bool | None = None, offset: int = 0, limit: int = 50
    ) -> dict[str, Any]:
        """Schedules ordered by name: ``{"schedules": [...], "total": n}``; ``active`` filters
        (True: firing, False: paused)."""
        params = {"offset": str(offset), "limit": str(limit)}
        if active is not None:
            params["active"] = "true" if active else "false"
        _, data, _ = await self._call("GET", "/schedules", params=params)
        return dict(data)

    async def get_schedule(self, name: str) -> dict[str, Any]:
        """One schedule."""
        _, data, _ = await self._call("GET", f"/schedules/{_quote(name)}")
        return dict(data)

    async def create_schedule(
        self,
        name: str,
        *,
        expression: str,
        task_type: str,
        params: Mapping[str, Any] | None = None,
        timezone: str | None = None,
        priority: int | str | None = None,
        active: bool | None = None,
    ) -> dict[str, Any]:
        """Create a schedule firing ``task_type`` tasks on the cron ``expression``; returns it.
        A taken name is an :class:`ApiResponseError` (409)."""
        body: dict[str, Any] = {
            "name": name,
            "expression": expression,
            "type": task_type,
            "params": dict(params or {}),
        }
        options = {"timezone": timezone, "priority": priority, "active": active}
        body.update({key: value for key, value in options.items() if value is not None})
        _, data, _ = await self._call("POST", "/schedules", json=body)
        return dict(data)

    async def update_schedule(
        self,
        name: str,
        *,
        expression: str | None = None,
        task_type: str | None = None,
        params: Mapping[str, Any] | None = None,
        timezone: str | None = None,
        priority: int | str | None = None,
        active: bool | None = None,
    ) -> dict[str, Any]:
        """Change the given fields (None keeps a field; ``params`` replace the stored ones
        whole); returns the schedule. The API changes ``type`` and ``params`` together: given
        ``params`` alone, the schedule's stored type is read first and sent with them."""
        if params is not None and task_type is None:
            task_type = str((await self.get_schedule(name))["type"])
        changes = {
            "expression": expression,
            "type": task_type,
            "params": None if params is None else dict(params),
            "timezone": timezone,
            "priority": priority,
            "active": active,
        }
        body = {key: value for key, value in changes.items() if value is not None}
        _, data, _ = await self._call("PATCH", f"/schedules/{_quote(name)}", json=body)
        return dict(data)

    async def pause_schedule(self, name: str) -> dict[str, Any]:
        """Stop firing (idempotent); returns the schedule."""
        _, data, _ = await self._call("POST", f"/schedules/{_quote(name)}/pause")
        return dict(data)

    async def resume_schedule(self, name: str) -> dict[str, Any]:
        """Fire again from the next fire time after now (idempotent); returns the schedule."""
        _, data, _ = await self._call("POST", f"/schedules/{_quote(name)}/resume")
        return dict(data)

    async def run_schedule(self, name: str) -> str:
        """Fire one task now without moving the timetable; returns the task's id."""
        _, data, _ = await self._call("POST", f"/schedules/{_quote(name)}/run")
        return str(data["task_id"])

    async def delete_schedule(self, name: str) -> None:
        """Delete a schedule (the tasks it fired stay)."""
        await self._call("DELETE", f"/schedules/{_quote(name)}")

    # -- statistics -----------------------------------------------------------------------------

    async def task_stats(
        self, *, since: str | None = None, until: str | None = None, task_type: str | None = None
    ) -> dict[str, Any]:
        """Counts, success rate and durations of the tasks created in ``[since, until)`` (RFC
        3339 times; the service defaults to the last 24 h), all types and per type."""
        given = {"since": since, "until": until, "type": task_type}
        params = {key: value for key, value in given.items() if value is not None}
        _, data, _ = await self._call("GET", "/tasks/stats", params=params)
        return dict(data)

    async def queue_stats(self) -> dict[str, Any]:
        """The answering instance's dispatcher, and the pending and running tasks in the store."""
        _, data, _ = await self._call("GET", "/queue/stats")
        return dict(data)

    # -- bulk actions and queues ---------------------------------------------------------------

    async def retry_many(self, **criteria: Any) -> int:
        """Re-run every failed or cancelled task matching ``criteria`` (``type``, ``queue``,
        ``status`` — one or a list —, ``error_type``, ``finished_before``,
        ``finished_after``; None values are left out) in the caller's projects; the count."""
        return await self._bulk("POST", "/tasks/retry", criteria)

    async def cancel_many(self, **criteria: Any) -> int:
        """Cancel every pending or running task matching ``criteria`` (as
        :meth:`retry_many`); the count."""
        return await self._bulk("POST", "/tasks/cancel", criteria)

    async def delete_many(self, **criteria: Any) -> int:
        """Delete every finished task matching ``criteria`` (as :meth:`retry_many`; at least
        one is required); the count."""
        return await self._bulk("DELETE", "/tasks", criteria)

    async def _bulk(self, method: str, path: str, criteria: Mapping[str, Any]) -> int:
        body = {key: value for key, value in criteria.items() if value is not None}
        _, data, _ = await self._call(method, path, json=body)
        return int(data["count"])

    async def queues(self) -> builtins.list[dict[str, Any]]:
        """Every queue: ``name``, ``concurrency``, ``paused``, ``pending``, ``running``."""
        _, data, _ = await self._call("GET", "/queues")
        return [dict(queue) for queue in data["queues"]]

    async def pause_queue(self, name: str) -> dict[str, Any]:
        """Pause a queue cluster-wide (idempotent); returns the queue."""
        _, data, _ = await self._call("POST", f"/queues/{_quote(name)}/pause")
        return dict(data)

    async def resume_queue(self, name: str) -> dict[str, Any]:
        """Resume a paused queue (idempotent); returns the queue."""
        _, data, _ = await self._call("POST", f"/queues/{_quote(name)}/resume")
        return dict(data)

    # -- following a task -----------------------------------------------------------------------

    async def watch(
        self, task_id: str, *, wait_s: float = 20.0, min_interval_s: float = 0.2
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield the task now and again each time its status or progress changes; stop after
        it reaches completed, failed or cancelled.

        Follows the task with long polls (``wait_s`` with the last ``ETag``), so an idle task
        costs one request per ``wait_s``; after an answer that brought no change the next
        request waits ``min_interval_s``, which bounds the rate against a server that answers
        long polls at once.
        """
        path = f"/tasks/{_quote(task_id)}"
        etag: str | None = None
        last: tuple[Any, ...] | None = None
        while True:
            headers = {"If-None-Match": etag} if etag else None
            params = {"wait_s": f"{wait_s:g}"} if etag else None
            status, data, reply = await self._call(
                "GET", path, params=params, headers=headers, extra_timeout_s=wait_s
            )
            etag = reply.get("ETag", etag)
            changed = False
            if status != _NOT_MODIFIED and isinstance(data, dict):
                visible = tuple(data.get(key) for key in _VISIBLE)
                if visible != last:
                    last, changed = visible, True
                    yield dict(data)
                if data.get("status") in TERMINAL:
                    return
            if not changed:
                await asyncio.sleep(min_interval_s)
