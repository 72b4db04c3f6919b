"""Idempotency keys in Redis: one owner across instances, waiting for it, leases that end with their
holder, and refusing (never guessing) while Redis is down."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bff.idempotency import ClaimState, IdempotencyStoreUnavailable
from bff.redis.idempotency import RedisIdempotencyStore
from tests.bff.redis.conftest import LinkFactory
from tests.support.redis import RedisServer


def store(links: LinkFactory, *, lease_s: float = 5.0) -> RedisIdempotencyStore:
    """The store as one instance has it."""
    return RedisIdempotencyStore(links(), ttl_s=60, lease_s=lease_s)


async def test_the_same_key_on_two_instances_has_one_owner(links: LinkFactory) -> None:
    """Claimed at the same moment on A and B: one gets NEW, the other IN_PROGRESS, and after completion
    both see DONE with the owner's result; another fingerprint is a CONFLICT."""
    a, b = store(links), store(links)
    claims = await asyncio.gather(a.claim("k", "fp"), b.claim("k", "fp"))
    assert sorted(claim.state.value for claim in claims) == ["in_progress", "new"]
    owner = a if claims[0].state is ClaimState.NEW else b
    await owner.complete("k", {"invoiceId": "412"})
    for instance in (a, b):
        done = await instance.claim("k", "fp")
        assert (done.state, done.result) == (ClaimState.DONE, {"invoiceId": "412"})
    assert (await b.claim("k", "other")).state is ClaimState.CONFLICT


async def test_a_waiter_on_another_instance_gets_the_owners_result(links: LinkFactory) -> None:
    """B waits for the key A holds and returns A's result as soon as A completes; a release instead
    lets B claim the key."""
    a, b = store(links), store(links)
    assert (await a.claim("k", "fp")).state is ClaimState.NEW
    waiting = asyncio.create_task(b.wait("k", 5.0))
    await asyncio.sleep(0.1)
    await a.complete("k", {"n": 1})
    done = await waiting
    assert done is not None
    assert (done.state, done.result) == (ClaimState.DONE, {"n": 1})
    assert (await a.claim("r", "fp")).state is ClaimState.NEW
    waiting = asyncio.create_task(b.wait("r", 5.0))
    await a.release("r")
    released = await waiting
    assert released is not None
    assert released.state is ClaimState.NEW
    assert (await b.claim("r", "fp")).state is ClaimState.NEW
    assert await a.wait("r", 0.1) is None, "B holds it now: still in progress after the timeout"
    await b.release("r")


async def test_a_live_holder_keeps_its_key_past_the_lease(links: LinkFactory) -> None:
    """The holder renews its lease every third of it: three leases later the key is still its own."""
    a, b = store(links, lease_s=0.3), store(links, lease_s=0.3)
    assert (await a.claim("k", "fp")).state is ClaimState.NEW
    await asyncio.sleep(0.9)
    assert (await b.claim("k", "fp")).state is ClaimState.IN_PROGRESS
    await a.release("k")


async def test_a_dead_holders_key_is_free_after_its_lease(
    links: LinkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A holder that stops renewing (its process died) frees the key within one lease: B's wait
    returns NEW and B owns it. The old holder's late completion does not overwrite B's claim."""
    a, b = store(links, lease_s=0.3), store(links, lease_s=0.3)
    assert (await a.claim("k", "fp")).state is ClaimState.NEW
    held = a._held["k"]
    held.renewal.cancel()  # what a SIGKILL does to the renewals, in one process
    freed = await b.wait("k", 2.0)
    assert freed is not None
    assert freed.state is ClaimState.NEW
    assert (await b.claim("k", "fp")).state is ClaimState.NEW
    with caplog.at_level(logging.ERROR, "bff.redis.idempotency"):
        await a.complete("k", {"late": True})
    assert "lease lost" in caplog.text
    assert (await a.claim("k", "fp")).state is ClaimState.IN_PROGRESS, "still B's"
    await b.complete("k", {"by": "b"})
    assert (await a.claim("k", "fp")).result == {"by": "b"}


async def test_without_redis_claims_fail_closed(redis_server: RedisServer, links: LinkFactory) -> None:
    """Redis down: claiming or waiting raises IdempotencyStoreUnavailable (with a Retry-After) rather than
    running the request unrecorded; once Redis is back, claims work without a restart."""
    a = store(links)
    await redis_server.stop()
    try:
        with pytest.raises(IdempotencyStoreUnavailable) as refused:
            await a.claim("k", "fp")
        assert refused.value.retry_after_s > 0
        with pytest.raises(IdempotencyStoreUnavailable):
            await a.wait("k", 1.0)
    finally:
        await redis_server.start()
    await asyncio.sleep(1.0)  # Redis counts as down for a second after the failure
    assert (await a.claim("k", "fp")).state is ClaimState.NEW
    await a.release("k")
