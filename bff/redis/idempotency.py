"""Idempotency keys in Redis: shared by every instance, with leases that end when their holder dies.

A key is one Redis string, ``<prefix>:idem:<key>``, holding JSON:

- in progress: ``{"f": fingerprint, "o": owner token, "d": 0}``, expiring after the lease
  (``BFF_IDEMPOTENCY_LEASE_MS``). The owner renews it every third of the lease while it works, so
  a long purchase keeps its key, and a process that dies frees it within one lease: a request
  waiting for the key on another instance then claims it and runs.
- done: ``{"f": fingerprint, "d": 1, "r": result JSON}``, expiring ``BFF_IDEMPOTENCY_TTL_S`` after
  completion.

Each step is one Lua script on that one key (so Cluster-safe): claiming checks and sets at once, so
two instances claiming the same key at the same moment get ``NEW`` once; completing, renewing and
releasing check the owner token first, so a holder whose lease ran out (it stalled past the lease
and another instance took the key over) never overwrites the new holder's state; it logs that
the work may have run twice.

Fail closed: when Redis cannot be reached (or refuses a command), :meth:`~RedisIdempotencyStore.claim`
and :meth:`~RedisIdempotencyStore.wait` raise :class:`~bff.idempotency.IdempotencyStoreUnavailable`
and the request is refused with 503 and ``Retry-After``: nothing runs without its key recorded.
Completing keeps trying for up to one lease (the work is done; the answer waits); if Redis is still
unreachable then, the key ends with its lease and a retry of the request would run again (logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bff.idempotency import (
    DEFAULT_TTL_S,
    Claim,
    ClaimState,
    IdempotencyStoreUnavailable,
)
from bff.redis.link import RETRY_AFTER_S, RedisLink, RedisUnavailable

__all__ = ["DEFAULT_LEASE_S", "RedisIdempotencyStore"]

logger = logging.getLogger("bff.redis.idempotency")

DEFAULT_LEASE_S: Final = 10.0
_POLL_FIRST_S: Final = 0.02
_POLL_MAX_S: Final = 0.25
_RETRY_S: Final = 0.2

_CLAIM: Final = """
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
  return {'new'}
end
local ok, e = pcall(cjson.decode, v)
if not ok or e['f'] ~= ARGV[1] then return {'conflict'} end
if e['d'] == 1 then return {'done', e['r']} end
return {'progress'}
"""
"""KEYS: the key. ARGV: fingerprint, lease in ms, the in-progress JSON."""

_COMPLETE: Final = """
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local e = cjson.decode(v)
if e['o'] ~= ARGV[1] or e['d'] == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
"""KEYS: the key. ARGV: owner token, the done JSON, TTL in s. 1 when it was still the owner's."""

_RENEW: Final = """
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local e = cjson.decode(v)
if e['o'] ~= ARGV[1] or e['d'] == 1 then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
"""KEYS: the key. ARGV: owner token, lease in ms."""

_RELEASE: Final = """
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local e = cjson.decode(v)
if e['o'] ~= ARGV[1] or e['d'] == 1 then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""
"""KEYS: the key. ARGV: owner token."""


@dataclass(slots=True)
class _Held:
    token: str
    fingerprint: str
    renewal: asyncio.Task[None]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisIdempotencyStore:
    """An :class:`~bff.idempotency.IdempotencyStore` in Redis (see the module docstring)."""

    def __init__(
        self,
        link: RedisLink,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        lease_s: float = DEFAULT_LEASE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s <= 0 or lease_s <= 0:
            raise ValueError("ttl_s and lease_s must be positive")
        self.link = link
        self.ttl_s = ttl_s
        self.lease_s = lease_s
        self._clock = clock
        self._held: dict[str, _Held] = {}
        client = link.client
        self._claim = client.register_script(_CLAIM)
        self._complete = client.register_script(_COMPLETE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def _key(self, key: str) -> str:
        return self.link.key("idem", key)

    async def _call(self, what: str, key: str, command: Callable[[Redis], Any]) -> Any:
        """Run ``command``; any failure to get an answer is :class:`IdempotencyStoreUnavailable`."""
        try:
            return await self.link.run(command)
        except (RedisUnavailable, RedisError) as exc:
            logger.warning("idempotency %s of %s failed: %s", what, key, exc)
            raise IdempotencyStoreUnavailable(
                f"idempotency keys unavailable: {exc}", retry_after_s=RETRY_AFTER_S
            ) from exc

    async def claim(self, key: str, fingerprint: str) -> Claim:
        """See :meth:`bff.idempotency.IdempotencyStore.claim`; ``NEW`` comes with a lease this process
        renews until :meth:`complete` or :meth:`release`."""
        token = secrets.token_hex(8)
        entry = json.dumps({"f": fingerprint, "o": token, "d": 0}, separators=(",", ":"))
        lease_ms = max(1, int(self.lease_s * 1000))
        reply = await self._call(
            "claim",
            key,
            lambda redis: self._claim(
                keys=[self._key(key)], args=[fingerprint, lease_ms, entry], client=redis
            ),
        )
        state = _text(reply[0])
        if state == "new":
            renewal = asyncio.create_task(self._keep(key, token), name="bff-idempotency-lease")
            self._held[key] = _Held(token, fingerprint, renewal)
            return Claim(ClaimState.NEW)
        if state == "done":
            return Claim(ClaimState.DONE, json.loads(_text(reply[1])))
        if state == "conflict":
            return Claim(ClaimState.CONFLICT)
        return Claim(ClaimState.IN_PROGRESS)

    async def _keep(self, key: str, token: str) -> None:
        """Renew the lease of ``key`` every third of it while this process holds it."""
        lease_ms = max(1, int(self.lease_s * 1000))
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                renewed = await self.link.run(
                    lambda redis: self._renew(keys=[self._key(key)], args=[token, lease_ms], client=redis)
                )
            except (RedisUnavailable, RedisError) as exc:
                logger.warning("idempotency key %s: lease not renewed (%s)", key, exc)
                continue
            if not renewed:
                logger.error("idempotency key %s: lease lost while working; the request may run twice", key)
                return

    def _let_go(self, key: str) -> _Held | None:
        held = self._held.pop(key, None)
        if held is not None:
            held.renewal.cancel()
        return held

    async def complete(self, key: str, result: Mapping[str, Any]) -> None:
        """See :meth:`bff.idempotency.IdempotencyStore.complete` (retried for up to one lease)."""
        held = self._let_go(key)
        if held is None:
            return
        done = json.dumps(
            {"f": held.fingerprint, "d": 1, "r": json.dumps(dict(result), separators=(",", ":"))},
            separators=(",", ":"),
        )
        ttl = max(1, int(self.ttl_s))
        give_up = self._clock() + self.lease_s
        while True:
            try:
                completed = await self.link.run(
                    lambda redis: self._complete(
                        keys=[self._key(key)], args=[held.token, done, ttl], client=redis
                    )
                )
            except RedisUnavailable as exc:
                if self._clock() >= give_up:
                    logger.error(
                        "idempotency key %s: done, but redis is unreachable (%s); a retry after the lease "
                        "ends would run again",
                        key,
                        exc,
                    )
                    return
                await asyncio.sleep(_RETRY_S)
                continue
            except RedisError as exc:
                logger.error("idempotency key %s: done, but redis refused to record it: %s", key, exc)
                return
            if not completed:
                logger.error(
                    "idempotency key %s: lease lost before completion; the request may have run twice", key
                )
            return

    async def release(self, key: str) -> None:
        """See :meth:`bff.idempotency.IdempotencyStore.release`; if Redis cannot be reached, the lease
        ends by itself."""
        held = self._let_go(key)
        if held is None:
            return
        with contextlib.suppress(RedisUnavailable, RedisError):
            await self.link.run(
                lambda redis: self._release(keys=[self._key(key)], args=[held.token], client=redis)
            )

    async def wait(self, key: str, timeout_s: float) -> Claim | None:
        """See :meth:`bff.idempotency.IdempotencyStore.wait`: polls the key (20 ms, doubling to 250 ms).

        A holder that died lets the key expire with its lease: that is ``NEW``.
        """
        deadline = self._clock() + timeout_s
        pause = _POLL_FIRST_S
        while True:
            raw = await self._call("wait", key, lambda redis: redis.get(self._key(key)))
            if raw is None:
                return Claim(ClaimState.NEW)
            try:
                entry = json.loads(raw)
            except ValueError:
                return Claim(ClaimState.NEW)
            if entry.get("d") == 1:
                return Claim(ClaimState.DONE, json.loads(entry["r"]))
            left = deadline - self._clock()
            if left <= 0:
                return None
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, _POLL_MAX_S)

    async def aclose(self) -> None:
        """Stop renewing leases (their keys expire; done at shutdown)."""
        for key in list(self._held):
            self._let_go(key)
