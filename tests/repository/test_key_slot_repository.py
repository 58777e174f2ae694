"""The key-slot contract, on every backend: at most ``limit`` holders per key, however many
claimers race; a holder frees its own slot; the store says who holds what."""

from __future__ import annotations

import asyncio

import pytest

from cam_tasks.domain import Lease
from cam_tasks.repository import KeySlotRepository
from tests.conftest import Backend


@pytest.fixture
async def slots(backend: Backend) -> KeySlotRepository:
    store = backend.slots()
    await store.initialize()
    return store


def lease(n: int, owner: str = "w1") -> Lease:
    return Lease(f"t{n}", owner, 1)


async def test_a_key_takes_at_most_its_limit_of_holders(slots: KeySlotRepository) -> None:
    assert await slots.acquire("acct:1", limit=2, holder=lease(1))
    assert await slots.acquire("acct:1", limit=2, holder=lease(2))
    assert not await slots.acquire("acct:1", limit=2, holder=lease(3))
    assert set(await slots.holders("acct:1")) == {lease(1), lease(2)}
    assert await slots.held() == {"acct:1": 2}


async def test_keys_are_independent_and_a_holder_may_ask_again(slots: KeySlotRepository) -> None:
    assert await slots.acquire("a", limit=1, holder=lease(1))
    assert await slots.acquire("b", limit=1, holder=lease(2))
    assert await slots.acquire("a", limit=1, holder=lease(1))  # already its own: still True
    assert await slots.held() == {"a": 1, "b": 1}


async def test_release_frees_only_that_holders_slot(slots: KeySlotRepository) -> None:
    await slots.acquire("k", limit=1, holder=lease(1))
    await slots.release("k", lease(2))  # holds nothing: no effect
    assert not await slots.acquire("k", limit=1, holder=lease(3))
    await slots.release("k", lease(1))
    await slots.release("k", lease(1))  # idempotent
    assert await slots.acquire("k", limit=1, holder=lease(3))
    assert await slots.holders("k") == [lease(3)]


async def test_another_attempt_of_the_same_task_is_another_holder(
    slots: KeySlotRepository,
) -> None:
    assert await slots.acquire("k", limit=1, holder=Lease("t1", "w1", 1))
    assert not await slots.acquire("k", limit=1, holder=Lease("t1", "w2", 2))


async def test_racing_claimers_never_exceed_the_limit(slots: KeySlotRepository) -> None:
    results = await asyncio.gather(
        *(slots.acquire("hot", limit=3, holder=lease(n, owner=f"w{n}")) for n in range(12))
    )
    assert sum(results) == 3
    assert len(await slots.holders("hot")) == 3


async def test_an_unknown_key_has_no_holders(slots: KeySlotRepository) -> None:
    assert await slots.holders("nobody") == []
    assert await slots.held() == {}
    with pytest.raises(ValueError, match="limit"):
        await slots.acquire("k", limit=0, holder=lease(1))


async def test_acquire_many_takes_what_acquiring_one_by_one_would(slots: KeySlotRepository) -> None:
    assert await slots.acquire("full", limit=1, holder=lease(0))
    assert await slots.acquire("room", limit=3, holder=lease(1))
    answers = await slots.acquire_many(
        [
            ("room", 3, lease(2)),
            ("room", 3, lease(3)),
            ("room", 3, lease(4)),  # one more than the room left
            ("new", 2, lease(5)),  # no document yet
            ("full", 1, lease(6)),
            ("full", 1, lease(0)),  # its own slot: still held
        ]
    )
    assert answers == [True, True, False, True, False, True]
    assert await slots.held() == {"full": 1, "room": 3, "new": 1}
    assert await slots.acquire_many([]) == []


async def test_acquire_many_takes_all_in_one_go_when_every_key_has_room(
    slots: KeySlotRepository,
) -> None:
    await slots.acquire("a", limit=5, holder=lease(1))
    await slots.acquire("b", limit=2, holder=lease(2))
    answers = await slots.acquire_many(
        [("a", 5, lease(3)), ("b", 2, lease(4)), ("a", 5, lease(5)), ("a", 5, lease(6))]
    )
    assert answers == [True] * 4
    assert await slots.held() == {"a": 4, "b": 2}
    assert not await slots.acquire("b", limit=2, holder=lease(7))
