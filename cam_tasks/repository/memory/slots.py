"""Concurrency-key slots of this process (``memory://``): a dict of key -> holders, held to the
same contract as the MongoDB store. Coroutine-safe without a lock: no method awaits."""

from __future__ import annotations

import builtins

from cam_tasks.domain import Lease
from cam_tasks.domain.lifecycle import Initializable

__all__ = ["MemoryKeySlotRepository"]


class MemoryKeySlotRepository(Initializable):
    """Key slots in this process only."""

    def __init__(self) -> None:
        self._holders: dict[str, list[Lease]] = {}

    async def acquire(self, key: str, *, limit: int, holder: Lease) -> bool:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        holders = self._holders.setdefault(key, [])
        if _bare(holder) in holders:
            return True
        if len(holders) >= limit:
            return False
        holders.append(_bare(holder))
        return True

    async def release(self, key: str, holder: Lease) -> None:
        holders = self._holders.get(key)
        if holders is not None and _bare(holder) in holders:
            holders.remove(_bare(holder))
            if not holders:
                del self._holders[key]

    async def holders(self, key: str) -> builtins.list[Lease]:
        return list(self._holders.get(key, ()))

    async def held(self) -> dict[str, int]:
        return {key: len(holders) for key, holders in self._holders.items() if holders}


def _bare(holder: Lease) -> Lease:
    # The fence only: started_at is not part of a holder's identity.
    return Lease(holder.task_id, holder.owner, holder.attempt)
