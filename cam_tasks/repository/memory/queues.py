"""The in-process queue flags behind ``memory://`` (the MongoDB one is
:class:`cam_tasks.repository.mongo.queues.MongoQueueRepository`; both pass
``tests/repository/test_queue_repository.py``). One process is the whole cluster here."""

from __future__ import annotations

from datetime import datetime

from cam_tasks.domain.lifecycle import Initializable

__all__ = ["MemoryQueueRepository"]


class MemoryQueueRepository(Initializable):
    """The paused queues of this process; nothing survives it. Coroutine-safe: no method
    awaits. Not thread-safe."""

    def __init__(self) -> None:
        self._paused: set[str] = set()

    async def initialize(self) -> None:
        """Nothing to create."""

    async def close(self) -> None:
        """Nothing to release. Idempotent."""

    async def set_paused(self, queue: str, paused: bool, *, now: datetime) -> None:
        if paused:
            self._paused.add(queue)
        else:
            self._paused.discard(queue)

    async def paused(self) -> frozenset[str]:
        return frozenset(self._paused)
