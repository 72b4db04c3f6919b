"""The in-memory event bus and idempotency store: ordering, bounds, slow subscribers, claims."""

from __future__ import annotations

import asyncio

import pytest

from bff.events import Event, InMemoryEventBus, SubscriberOverflow
from bff.idempotency import ClaimState, IdempotencyStoreFull, InMemoryIdempotencyStore


async def test_subscribers_get_their_topics_in_order() -> None:
    """Each subscriber receives the events of its topics, in publish order, and nothing else."""
    bus = InMemoryEventBus()
    async with bus.subscribe("a", "b") as both, bus.subscribe("b") as only_b:
        for topic, n in (("a", 1), ("b", 2), ("c", 3), ("a", 4)):
            await bus.publish(Event(topic, {"n": n}))
        await bus.aclose()
        assert [event.data["n"] async for event in both] == [1, 2, 4]
        assert [event.data["n"] async for event in only_b] == [2]


async def test_events_before_subscribing_are_not_delivered() -> None:
    """A subscriber sees only events published after it subscribed."""
    bus = InMemoryEventBus()
    await bus.publish(Event("a", {"n": 1}))
    async with bus.subscribe("a") as events:
        await bus.publish(Event("a", {"n": 2}))
        assert (await anext(events)).data == {"n": 2}


async def test_leaving_unsubscribes() -> None:
    """Leaving the ``async with`` removes the subscriber; later events go nowhere."""
    bus = InMemoryEventBus()
    async with bus.subscribe("a"):
        assert bus.subscriber_count("a") == 1
    assert bus.subscriber_count("a") == 0
    assert bus.subscriber_count() == 0
    await bus.publish(Event("a", {}))


async def test_a_slow_subscriber_is_dropped_not_buffered() -> None:
    """Past queue_size waiting events, the subscriber is dropped, told once, and its queue freed."""
    bus = InMemoryEventBus(queue_size=3)
    told: list[str] = []
    async with (
        bus.subscribe("a", on_overflow=lambda: told.append("slow")) as slow,
        bus.subscribe("a") as fast,
    ):
        for n in range(5):
            await bus.publish(Event("a", {"n": n}))
            if n < 3:
                assert (await anext(fast)).data == {"n": n}
        assert told == ["slow"]
        assert bus.subscriber_count("a") == 1
        assert bus.dropped_subscribers == 1
        with pytest.raises(SubscriberOverflow, match="more than 3 events"):
            await anext(slow)
        assert [(await anext(fast)).data["n"] for _ in range(2)] == [3, 4]


async def test_closing_the_bus_ends_waiting_subscribers() -> None:
    """aclose() ends the iteration of subscribers waiting for events and refuses new ones."""
    bus = InMemoryEventBus()
    async with bus.subscribe("a") as events:
        waiting = asyncio.ensure_future(anext(events, None))
        await asyncio.sleep(0)
        await bus.aclose()
        assert await waiting is None
    with pytest.raises(RuntimeError, match="closed"):
        async with bus.subscribe("a"):
            pass


async def test_claims_new_done_conflict_and_in_progress() -> None:
    """A key is NEW once, IN_PROGRESS until completed, then DONE with its result; CONFLICT for other input."""
    store = InMemoryIdempotencyStore()
    assert (await store.claim("k", "f1")).state is ClaimState.NEW
    assert (await store.claim("k", "f1")).state is ClaimState.IN_PROGRESS
    assert (await store.claim("k", "f2")).state is ClaimState.CONFLICT
    await store.complete("k", {"invoiceId": "7"})
    done = await store.claim("k", "f1")
    assert (done.state, done.result) == (ClaimState.DONE, {"invoiceId": "7"})


async def test_release_lets_the_key_be_claimed_again() -> None:
    """A released key (the work failed) is NEW again, and waiters are told to claim it."""
    store = InMemoryIdempotencyStore()
    await store.claim("k", "f")
    waiter = asyncio.ensure_future(store.wait("k", 5))
    await asyncio.sleep(0)
    await store.release("k")
    released = await waiter
    assert released is not None
    assert released.state is ClaimState.NEW
    assert (await store.claim("k", "f")).state is ClaimState.NEW


async def test_wait_returns_the_owners_result_or_times_out() -> None:
    """wait() gives the owner's result when it completes, None when it is still at work."""
    store = InMemoryIdempotencyStore()
    await store.claim("k", "f")
    assert await store.wait("k", 0.01) is None
    waiter = asyncio.ensure_future(store.wait("k", 5))
    await asyncio.sleep(0)
    await store.complete("k", {"chargeId": "1"})
    done = await waiter
    assert done is not None
    assert (done.state, done.result) == (ClaimState.DONE, {"chargeId": "1"})


async def test_keys_expire_after_their_ttl() -> None:
    """A key is forgotten ttl_s seconds after its claim."""
    now = [1_000.0]
    store = InMemoryIdempotencyStore(ttl_s=60, clock=lambda: now[0])
    await store.claim("k", "f")
    await store.complete("k", {})
    now[0] += 61
    assert (await store.claim("k", "other")).state is ClaimState.NEW


async def test_a_full_store_forgets_finished_keys_first_never_running_ones() -> None:
    """At max_keys the oldest finished key makes room; with every key in progress, claims fail."""
    store = InMemoryIdempotencyStore(max_keys=2)
    await store.claim("a", "f")
    await store.complete("a", {})
    await store.claim("b", "f")
    assert (await store.claim("c", "f")).state is ClaimState.NEW  # "a" made room
    assert len(store) == 2
    with pytest.raises(IdempotencyStoreFull):
        await store.claim("d", "f")  # "b" and "c" are in progress
    await store.complete("b", {})
    assert (await store.claim("a", "f")).state is ClaimState.NEW  # forgotten: a replay this old is new
