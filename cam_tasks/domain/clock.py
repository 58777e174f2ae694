"""Time, injected: everything time-driven (backoff, leases, schedules) asks a :class:`Clock`."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock", "to_millis", "utc"]

_from_timestamp = datetime.fromtimestamp


def utc(value: datetime) -> datetime:
    """Return ``value`` as a tz-aware UTC datetime; naive values are taken to be UTC already.

    MongoDB stores millisecond precision and hands back naive datetimes unless asked otherwise,
    so every boundary normalises through here.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_millis(value: datetime) -> datetime:
    """``value`` as every store keeps it: tz-aware UTC, truncated to whole milliseconds (a BSON
    date's precision), so that every backend compares and orders times alike."""
    if value.tzinfo is UTC and not value.microsecond % 1000:
        return value  # already so (the usual case: SystemClock's): no new datetime
    value = utc(value)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time as a tz-aware UTC datetime."""
        ...


class SystemClock:
    """The wall clock, truncated to milliseconds so values survive a BSON round trip unchanged."""

    def now(self) -> datetime:
        # Whole milliseconds straight from the integer clock: a third of the cost of
        # now().replace(), and it runs several times per task. Exact: ms / 1000 is within half
        # a microsecond of the true value (to 2106), and fromtimestamp rounds to the microsecond.
        return _from_timestamp(time.time_ns() // 1_000_000 / 1000, UTC)


class ManualClock:
    """A clock that moves only when told to: for tests and simulations."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = utc(start or datetime(2026, 1, 1, tzinfo=UTC))

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = utc(when)
