"""Concurrency-key limits: which limit applies to a key, decided once for every instance."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

__all__ = ["KeyLimits"]


class KeyLimits:
    """The limit of a concurrency key: that of the pattern (fnmatch: ``*``, ``?``, ``[…]``)
    that matches it — the longest such pattern when several do, so a specific rule wins over a
    general one — else None: not limited. Results are cached per key.
    """

    def __init__(self, patterns: Mapping[str, int]) -> None:
        bad = {pattern: limit for pattern, limit in patterns.items() if limit < 1}
        if bad:
            raise ValueError(f"limits must be >= 1: {bad}")
        # Longest first: the most specific pattern is tried first; ties in a stable order.
        self._patterns = sorted(patterns.items(), key=lambda item: (-len(item[0]), item[0]))
        self._cache: dict[str, int | None] = {}

    def __bool__(self) -> bool:
        """True when any key can be limited at all."""
        return bool(self._patterns)

    def __call__(self, key: str) -> int | None:
        """The limit of ``key``, or None."""
        if key not in self._cache:
            if len(self._cache) > 100_000:
                self._cache.clear()  # bounded: keys come from task parameters
            self._cache[key] = next(
                (limit for pattern, limit in self._patterns if fnmatch.fnmatchcase(key, pattern)),
                None,
            )
        return self._cache[key]
