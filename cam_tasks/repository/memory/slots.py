"""Concurrency-key slots of this process (``memory://``): a dict of key -> holders, held to the
same contract as the MongoDB store. Coroutine-safe without a lock: no method awaits."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

from cam_tasks.domain import Lease
from cam_tasks.domain.lifecycle import Initializable

__all__ = ["MemoryKeySlotRepository"]


class MemoryKeySlotRepository(Initializable):
    """Key slots in this process only."""

    def __init__(self) -> None:
        # key -> holders in the order they took their slots (a dict: O(1) membership).
        self._holders: dict[str, dict[Lease, None]] = {}

    async def acquire(self, key: str, *, limit: int, holder: Lease) -> bool:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        holders = self._holders.setdefault(key, {})
        entry = _bare(holder)
        if entry in holders:
            return True
        if len(holders) >= limit:
            return False
        holders[entry] = None
        return True

    async def acquire_many(self, requests: Sequence[tuple[str, int, Lease]]) -> builtins.list[bool]:
        return [
            await self.acquire(key, limit=limit, holder=holder) for key, limit, holder in requests
        ]

    async def release(self, key: str, holder: Lease) -> None:
        holders = self._holders.get(key)
        if holders is not None:
            holders.pop(_bare(holder), None)
            if not holders:
                del self._holders[key]

    async def holders(self, key: str) -> builtins.list[Lease]:
        return list(self._holders.get(key, ()))

    async def held(self) -> dict[str, int]:
        return {key: len(holders) for key, holders in self._holders.items() if holders}


def _bare(holder: Lease) -> Lease:
    # The fence only: started_at is not part of a holder's identity.
    return Lease(holder.task_id, holder.owner, holder.attempt)
