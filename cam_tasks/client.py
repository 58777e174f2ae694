"""An HTTP client of the cam_tasks API: what the ``cam-tasks`` commands use, usable from scripts.

It knows the API's wire format (paths, the envelope, bearer tokens) and nothing of the server's
code: tasks come back as the JSON the API sends (``dict``). Every error the API answers becomes
:class:`ApiResponseError` with the envelope's ``msg`` and ``details``; a service that cannot be
reached becomes :class:`ServiceUnreachableError`.

::

    async with CamTasksClient("http://127.0.0.1:8001", token=token) as client:
        task_id = await client.submit("sync_assets", {"provider": "aliyun", ...})
        async for task in client.watch(task_id):
            print(task["status"], task["progress"])
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Collection, Mapping
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import quote

import aiohttp

from cam_tasks._version import __version__
from cam_tasks.domain import CamTasksError

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_URL",
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


class ApiResponseError(CamTasksError):
    """The API answered an error envelope (or, from something in between, a non-JSON error).

    ``status`` is the HTTP status, ``error`` the machine code, ``msg`` and ``details`` what the
    envelope says.
    """

    def __init__(
        self, status: int, error: str, msg: str, details: builtins.list[Any] | None = None
    ) -> None:
        super().__init__(f"{status} {error}: {msg}")
        self.status = status
        self.error = error
        self.msg = msg
        self.details = list(details or [])


class ServiceUnreachableError(CamTasksError):
    """No answer from ``url``: the service is down, the address is wrong, or it timed out."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach {url}: {reason}")
        self.url = url
        self.reason = reason


def _quote(task_id: str) -> str:
    return quote(task_id, safe="")


class CamTasksClient:
    """One HTTP session to the API at ``url`` + ``prefix``.

    ``token`` is sent as ``Authorization: Bearer <token>``. ``timeout_s`` bounds each request
    (a long poll gets its wait on top). Use ``async with``, or call :meth:`close`.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = DEFAULT_PREFIX,
        token: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError("timeout_s must be > 0")
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
        except aiohttp.ClientConnectionError as exc:
            raise ServiceUnreachableError(self.url, str(exc) or type(exc).__name__) from None
        except TimeoutError:
            raise ServiceUnreachableError(self.url, "timed out") from None
        if status >= 400:
            if isinstance(envelope, dict) and isinstance(envelope.get("data"), dict):
                data = envelope["data"]
                raise ApiResponseError(
                    status,
                    str(data.get("error", "http_error")),
                    str(envelope.get("msg", reason)),
                    data.get("details") if isinstance(data.get("details"), list) else [],
                )
            raise ApiResponseError(status, "http_error", reason.lower() or "error")
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
        """Submit a task of any registered type (``POST /tasks``); returns its id."""
        body: dict[str, Any] = {"type": task_type, "params": dict(params or {})}
        options = {
            "priority": priority,
            "delay_s": delay_s,
            "run_at": run_at,
            "max_retries": max_retries,
            "timeout_s": timeout_s,
            "idempotency_key": idempotency_key,
        }
        body.update({key: value for key, value in options.items() if value is not None})
        _, data, _ = await self._call("POST", "/tasks", json=body)
        return str(data["task_id"])

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
    ) -> dict[str, Any]:
        """One page, newest first: ``{"tasks": [...], "total": n}``."""
        params = {"offset": str(offset), "limit": str(limit)}
        if task_type is not None:
            params["type"] = task_type
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
