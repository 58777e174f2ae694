"""``async with`` for the long-lived objects, written once.

Every long-lived object (dispatcher, scheduler, stores, the runtime) has an async opening step
and an idempotent ``close()``; these mixins make ``async with obj:`` run them.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["Initializable", "Startable"]


class _Closes:
    async def close(self) -> None:
        """Release what the object owns. Subclasses make it idempotent."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Startable(_Closes):
    """``async with obj:`` is ``await obj.start()`` … ``await obj.close()``."""

    async def start(self) -> None:
        """Start the object's work. Subclasses make it idempotent."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self


class Initializable(_Closes):
    """``async with store:`` is ``await store.initialize()`` … ``await store.close()``."""

    async def initialize(self) -> None:
        """Prepare the store (indexes, connection checks). Subclasses make it idempotent."""

    async def __aenter__(self) -> Self:
        await self.initialize()
        return self
