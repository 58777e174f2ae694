"""Endpoints for the machines that watch the service: health probes and the metrics scrape.

They live outside the API prefix (``/health/live``, ``/health/ready``, ``/metrics``) and answer
plain JSON or Prometheus text, not the API envelope: load balancers, orchestrators and
Prometheus read the status code and their own formats, and a 503 here reports a state, not a
failed request. They do no work beyond their checks, hold no lock, and never raise.

- ``GET /health/live``: 200 ``{"status": "ok"}`` while the process serves HTTP. Restart the
  process when it stops answering.
- ``GET /health/ready``: 200 when every readiness check passes, else 503; the body names each
  check and why it failed: ``{"status": "ok" | "unavailable", "checks": {"database": {"ok":
  true}, "dispatcher": {"ok": false, "reason": "not running"}}}``. Each check is bounded by
  ``timeout_s``; the checks run concurrently. Stop routing traffic while it says 503.
- ``GET /metrics``: whatever the :class:`MetricsSource` renders, in the format the scraper's
  ``Accept`` asks for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import orjson
from aiohttp import hdrs, web

__all__ = ["MetricsSource", "ReadinessCheck", "health_routes", "metrics_routes"]

logger = logging.getLogger(__name__)

#: A readiness check: None when ready, else a short reason written for an operator.
ReadinessCheck = Callable[[], Awaitable[str | None]]


class MetricsSource(Protocol):
    async def render(self, accept: str) -> tuple[bytes, str]:
        """The metrics in the format ``accept`` asks for: (body, content type)."""
        ...


_NO_STORE = {hdrs.CACHE_CONTROL: "no-store"}


def _json(payload: Mapping[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload),
        status=status,
        content_type="application/json",
        headers=_NO_STORE,
    )


async def _run_check(name: str, check: ReadinessCheck, timeout_s: float) -> dict[str, Any]:
    try:
        async with asyncio.timeout(timeout_s):
            reason = await check()
    except TimeoutError:
        reason = f"no answer within {timeout_s:g} s"
    except Exception:
        logger.exception("readiness check %s failed", name)
        reason = "check failed"
    return {"ok": True} if reason is None else {"ok": False, "reason": reason}


def health_routes(
    checks: Mapping[str, ReadinessCheck], *, timeout_s: float = 2.0
) -> list[web.RouteDef]:
    """``/health/live`` and ``/health/ready`` over ``checks`` (name -> check)."""
    if not timeout_s > 0:
        raise ValueError("timeout_s must be > 0")
    named = dict(checks)

    async def live(_: web.Request) -> web.Response:
        return _json({"status": "ok"})

    async def ready(_: web.Request) -> web.Response:
        results = await asyncio.gather(
            *(_run_check(name, check, timeout_s) for name, check in named.items())
        )
        report = dict(zip(named, results, strict=True))
        healthy = all(result["ok"] for result in results)
        return _json(
            {"status": "ok" if healthy else "unavailable", "checks": report},
            status=200 if healthy else 503,
        )

    return [web.get("/health/live", live), web.get("/health/ready", ready)]


def metrics_routes(source: MetricsSource, *, path: str = "/metrics") -> list[web.RouteDef]:
    """``GET path``: the scrape. Compressed when the scraper accepts it."""

    async def scrape(request: web.Request) -> web.Response:
        body, content_type = await source.render(request.headers.get(hdrs.ACCEPT, ""))
        response = web.Response(body=body, headers={hdrs.CONTENT_TYPE: content_type, **_NO_STORE})
        response.enable_compression()
        return response

    return [web.get(path, scrape)]
