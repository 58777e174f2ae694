"""What the runtime's background loops (dispatcher, scheduler) share: an event to sleep on
between passes, and a close procedure that runs once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

__all__ = ["CloseOnce", "Wakeup"]


class Wakeup(asyncio.Event):
    """The event a loop sleeps on between passes: ``set()`` wakes it early (a local submit, a
    finished task, a changed schedule). Clear it *before* a pass, so that a wake-up arriving
    during the pass is not lost."""

    async def sleep(self, timeout_s: float) -> None:
        """Sleep up to ``timeout_s``, returning early when set."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.wait()


class CloseOnce:
    """Runs a close procedure once: a second or concurrent ``run`` waits for the first to
    finish (shielded, so a cancelled waiter does not cancel the close in progress)."""

    def __init__(self) -> None:
        self._done: asyncio.Future[None] | None = None

    @property
    def begun(self) -> bool:
        """True once a close has started (the object must not start again)."""
        return self._done is not None

    async def run(self, stop: Callable[[], Awaitable[None]]) -> None:
        if self._done is not None:
            await asyncio.shield(self._done)
            return
        self._done = asyncio.get_running_loop().create_future()
        try:
            await stop()
        finally:
            self._done.set_result(None)
