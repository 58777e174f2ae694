"""Retry backoff: exponential, capped, with bounded jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delay before attempt ``n + 1`` after attempt ``n`` failed.

    ``base_delay_s(n) = min(base_s * 2 ** (n - 1), max_s)`` is non-decreasing in ``n``; the
    actual delay adds up to ``jitter`` of it (``base_delay_s * (1 + U[0, jitter])``) and is capped
    at ``max_s`` again, so every delay lies in ``[base_s, max_s]``. Jitter spreads retries of tasks
    that failed together (a provider outage) so they do not return as one wave.
    """

    base_s: float = 1.0
    max_s: float = 300.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.max_s < self.base_s or not 0 <= self.jitter <= 1:
            raise ValueError("need 0 < base_s <= max_s and 0 <= jitter <= 1")

    def base_delay_s(self, attempt: int) -> float:
        exponent = min(max(attempt, 1) - 1, 64)  # bounded: 2**64 * base_s is past any cap
        return float(min(self.base_s * 2.0**exponent, self.max_s))

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        base = self.base_delay_s(attempt)
        spread = (rng or random).uniform(0.0, self.jitter)
        return float(min(base * (1.0 + spread), self.max_s))
