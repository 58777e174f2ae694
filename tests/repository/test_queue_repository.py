"""The queue flags on every backend (memory, mongomock, wire): a pause is stored, read back in
one read, and seen by a second store on the same database (another instance)."""

from __future__ import annotations

from datetime import UTC, datetime

from cam_tasks.repository import QueueRepository
from tests.conftest import Backend

T0 = datetime(2100, 1, 1, tzinfo=UTC)


async def _opened(backend: Backend) -> QueueRepository:
    store = backend.queues()
    await store.initialize()
    return store


async def test_no_queue_is_paused_until_one_is(backend: Backend) -> None:
    store = await _opened(backend)
    assert await store.paused() == frozenset()


async def test_pause_and_resume_are_stored_and_idempotent(backend: Backend) -> None:
    store = await _opened(backend)
    await store.set_paused("bulk", True, now=T0)
    await store.set_paused("bulk", True, now=T0)
    await store.set_paused("reports", True, now=T0)
    assert await store.paused() == {"bulk", "reports"}
    await store.set_paused("bulk", False, now=T0)
    await store.set_paused("never-paused", False, now=T0)
    assert await store.paused() == {"reports"}
    await store.initialize()  # idempotent, keeps the flags
    await store.close()
    await store.close()


async def test_a_pause_is_seen_by_another_store_on_the_same_database(
    mongo_backend: Backend,
) -> None:
    one, other = await _opened(mongo_backend), await _opened(mongo_backend)
    await one.set_paused("bulk", True, now=T0)
    assert await other.paused() == {"bulk"}
    await other.set_paused("bulk", False, now=T0)
    assert await one.paused() == frozenset()


async def test_a_name_is_never_an_operator(mongo_backend: Backend) -> None:
    store = await _opened(mongo_backend)
    await store.set_paused("$ne", True, now=T0)
    assert await store.paused() == {"$ne"}
