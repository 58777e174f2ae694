"""Limits on what one client may send: a submit rate per principal and the shape of ``params``.

- **Submit rate**: a token bucket per principal name (``submit_rate_per_s`` refilled, up to
  ``submit_burst``). It lives in this process's memory: with N instances behind a load
  balancer a principal may submit up to N times the rate. It bounds bursts cheaply; the cap on
  a principal's *pending* tasks (``max_pending_per_principal``, enforced by the service on the
  database) is the limit that holds across instances.
- **Params shape**: nesting depth, number of keys, integers MongoDB can store (8 bytes), key
  names MongoDB treats specially (a leading ``$``, a NUL byte), and key names of credentials
  (``password``, ``secret``, ``token``…): cloud credentials are never task parameters, asset
  providers get them from the account configuration by ``account_id``. A refused submission is
  a 422 naming every problem (at most :data:`MAX_PROBLEMS`).

Errors added to the tree of :mod:`cam_tasks.domain.errors`::

    CamTasksError
    └── RateLimitedError   a principal submits faster than its rate (429, Retry-After)
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from cam_tasks.domain import CamTasksError, InvalidParamsError

__all__ = [
    "LIMITER_KEY",
    "MAX_PROBLEMS",
    "SECRET_KEY_NAMES",
    "ApiLimits",
    "RateLimitedError",
    "RequestLimiter",
    "SubmitRateLimiter",
    "check_params",
    "is_secret_name",
]

#: Most problems one refusal lists.
MAX_PROBLEMS: Final = 20
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

#: Key names (compared lowercased, without ``_``, ``-``, ``.`` or spaces; a key *ending* in one
#: counts too: ``db_password``, ``AccessKeySecret``) that hold credentials.
SECRET_KEY_NAMES: Final = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "secretkey",
    "secretaccesskey",
    "accesskey",
    "privatekey",
    "apikey",
    "token",
    "credential",
    "credentials",
    "authorization",
)
_SECRET_EXACT: Final = frozenset({"pwd"})
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


class RateLimitedError(CamTasksError):
    """``principal`` submitted faster than its rate; it may try again after ``retry_after_s``."""

    def __init__(self, principal: str, retry_after_s: float) -> None:
        super().__init__(f"{principal!r} submits too fast: retry in {retry_after_s:.1f} s")
        self.principal = principal
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class ApiLimits:
    """The request limits of one API app. ``submit_rate_per_s`` None: no rate limit.

    ValueError for a non-positive rate, burst, depth or key count.
    """

    submit_rate_per_s: float | None = None
    submit_burst: int = 10
    params_max_depth: int = 10
    params_max_keys: int = 10_000
    #: Distinct principals whose buckets are remembered; the least recently seen is forgotten
    #: (it gets a full bucket back), so memory stays bounded whoever authenticates.
    max_tracked_principals: int = 10_000

    def __post_init__(self) -> None:
        if self.submit_rate_per_s is not None and not 0 < self.submit_rate_per_s < math.inf:
            raise ValueError("submit_rate_per_s must be a finite number > 0 (or None)")
        for name in ("submit_burst", "params_max_depth", "params_max_keys"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.max_tracked_principals < 1:
            raise ValueError("max_tracked_principals must be >= 1")


class SubmitRateLimiter:
    """Token buckets per principal name, in this process's memory.

    Each submit takes one token; a bucket holds at most ``burst`` and refills at ``rate_per_s``.
    ``clock`` is monotonic seconds (injectable for tests). Not thread-safe; safe on one event
    loop, where :meth:`take` never awaits.
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        max_tracked: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate_per_s = rate_per_s
        self._burst = float(burst)
        self._max_tracked = max_tracked
        self._clock = clock
        # name -> (tokens, when they were counted); dict order = least recently used first.
        self._buckets: dict[str, tuple[float, float]] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, principal: str) -> None:
        """Spend one token of ``principal``'s bucket, or raise :class:`RateLimitedError` with
        the time until one is back."""
        now = self._clock()
        tokens, then = self._buckets.pop(principal, (self._burst, now))
        tokens = min(self._burst, tokens + max(0.0, now - then) * self._rate_per_s)
        if tokens >= 1.0:
            self._buckets[principal] = (tokens - 1.0, now)
            self._forget_least_recent()
            return
        self._buckets[principal] = (tokens, now)
        raise RateLimitedError(principal, (1.0 - tokens) / self._rate_per_s)

    def _forget_least_recent(self) -> None:
        while len(self._buckets) > self._max_tracked:
            del self._buckets[next(iter(self._buckets))]


def is_secret_name(key: str) -> bool:
    """Whether a params key names a credential (see :data:`SECRET_KEY_NAMES`)."""
    normalized = _NOT_ALNUM.sub("", key.lower())
    return normalized in _SECRET_EXACT or normalized.endswith(SECRET_KEY_NAMES)


def _problem(loc: list[str | int], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind}


_RESERVED_KEY: Final = ("keys must not start with $ or contain NUL", "reserved_key")
_SECRET_KEY: Final = (
    "credentials are never task parameters: the provider gets them from the account "
    "configuration by account_id",
    "secret_field",
)


def _key_refusal(key: str) -> tuple[str, str] | None:
    """Why ``key`` may not be a params key (message, type), or None."""
    if key.startswith("$") or "\x00" in key:
        return _RESERVED_KEY
    if is_secret_name(key):
        return _SECRET_KEY
    return None


#: Keys a submit's params use are few and recur: their verdicts are kept (short keys only,
#: so the cache stays small whatever clients send).
_cached_key_refusal: Final = functools.lru_cache(maxsize=1024)(_key_refusal)
_CACHED_KEY_LENGTH: Final = 64


def check_params(
    value: Any, *, max_depth: int, max_keys: int, loc: tuple[str | int, ...] = ("params",)
) -> None:
    """Raise :class:`InvalidParamsError` (422) when the JSON value ``value`` nests deeper than
    ``max_depth`` (``{}`` is depth 1), has more than ``max_keys`` members (object keys and
    array items, nested ones included), holds an integer outside 64 bits, or a key that is
    reserved or names a credential.

    Iterative, so a hostile depth cannot exhaust the stack, and it gives up as soon as the
    member count passes ``max_keys``, so its work is bounded whatever the body holds.
    """
    if not isinstance(value, dict | list):
        return
    problems: list[dict[str, Any]] = []
    members = 0
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 1, loc)]
    while stack and len(problems) < MAX_PROBLEMS:
        container, depth, where = stack.pop()
        if depth > max_depth:
            problems.append(_problem([*where], f"nests deeper than {max_depth} levels", "too_deep"))
            continue
        children: Iterable[tuple[str | int, Any]] = (
            container.items() if isinstance(container, dict) else enumerate(container)
        )
        members += len(container)
        if members > max_keys:
            problems.append(_problem([*loc], f"more than {max_keys} members", "too_many_keys"))
            break
        for key, child in children:
            if isinstance(key, str):
                refusal = (
                    _cached_key_refusal(key)
                    if len(key) <= _CACHED_KEY_LENGTH
                    else _key_refusal(key)
                )
                if refusal is not None:
                    problems.append(_problem([*where, key], *refusal))
            if isinstance(child, dict | list):
                stack.append((child, depth + 1, (*where, key)))
            elif isinstance(child, int) and not _INT64_MIN <= child <= _INT64_MAX:
                problems.append(
                    _problem([*where, key], "integer out of 64-bit range", "int_out_of_range")
                )
    if problems:
        raise InvalidParamsError("params refused", problems[:MAX_PROBLEMS])


class RequestLimiter:
    """The limits of one API app at work: what the handlers call before a submit."""

    def __init__(self, limits: ApiLimits, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.rate: SubmitRateLimiter | None = None
        if limits.submit_rate_per_s is not None:
            self.rate = SubmitRateLimiter(
                limits.submit_rate_per_s,
                limits.submit_burst,
                max_tracked=limits.max_tracked_principals,
                clock=clock,
            )

    def submitted(self, principal: str) -> None:
        """Count one submit of ``principal``: RateLimitedError when it is over its rate."""
        if self.rate is not None:
            self.rate.take(principal)

    def check_params(self, value: Any, loc: tuple[str | int, ...]) -> None:
        """InvalidParamsError unless ``value`` has a shape :func:`check_params` accepts."""
        check_params(
            value,
            max_depth=self.limits.params_max_depth,
            max_keys=self.limits.params_max_keys,
            loc=loc,
        )


#: The :class:`RequestLimiter` of an API app.
LIMITER_KEY: Final = web.AppKey("cam_tasks.limiter", RequestLimiter)
