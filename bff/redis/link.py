"""The connection to Redis that every shared part uses: its clients, its keys, whether Redis is up.

One :class:`RedisLink` per process (built from ``BFF_REDIS_URL``) holds redis-py's asyncio client over
a bounded, blocking connection pool (``BFF_REDIS_MAX_CONNECTIONS``; a command waits up to
``BFF_REDIS_TIMEOUT_MS`` for a free connection), plus one dedicated client per long blocking reader
(the bus, the webhook worker), so that those never starve ordinary commands.

Keys. Every key and channel starts with ``BFF_REDIS_PREFIX`` (``bff``). Redis Cluster sends each key
to the slot of its hash tag (the part in ``{}``), and refuses a command or script whose keys are in
different slots. So the keys one command or script touches together share one tag::

    {bff:events}:log                    the event bus's stream      } the webhook publish script
    {bff:events}:webhooks               accepted webhooks (a stream) } writes all three at once
    {bff:events}:webhook:<name>:<id>    a webhook id seen           }
    {bff:apq}:doc:<sha256>, {bff:apq}:lru      APQ documents and their recency (trimmed together)
    bff:cache:<service>/<resource>...   cache entries, one key per command (pipelined)
    bff:idem:<key>                      one idempotency key (each script touches one key)
    bff:limits:...                      the ``limits`` library's counters (one key per script)
    bff:cache:invalidate                the cache's invalidation channel (Pub/Sub)

Availability. A command that cannot reach Redis (refused, reset, timed out) raises
:class:`RedisUnavailable` and marks Redis down for :data:`DOWN_S`: during that time every command
fails at once without trying, so an outage costs requests no timeouts. Each part decides what a
failure means for it (README "When Redis fails"). The first failure of an outage is logged at WARNING
and the recovery at INFO, once each. Errors Redis answers (a script error, a missing permission)
are not outages: they propagate as redis-py raises them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Final, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bff.settings import Settings

__all__ = [
    "DOWN_S",
    "OUTAGE_ERRORS",
    "RETRY_AFTER_S",
    "RedisLink",
    "RedisUnavailable",
    "raise_if_cancelling",
    "stop_tasks",
]

logger = logging.getLogger("bff.redis")

DOWN_S: Final = 1.0
"""Seconds Redis counts as down after a command failed to reach it (no command tries meanwhile)."""
RETRY_AFTER_S: Final = 2
"""``Retry-After`` (seconds) of what is refused while Redis is down (idempotent writes, webhooks)."""
OUTAGE_ERRORS: Final = (RedisConnectionError, RedisTimeoutError, OSError)
"""What redis-py raises when Redis cannot be reached (as opposed to errors Redis answers)."""

T = TypeVar("T")


class RedisUnavailable(Exception):
    """Redis could not be reached for a command, or could not less than :data:`DOWN_S` ago."""


class RedisLink:
    """The process's clients of one Redis, its key names and its availability (see the module doc).

    ``url`` is a redis-py URL; ``timeout_s`` bounds connecting, each answer and the wait for a pooled
    connection. Nothing connects before the first command.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "bff",
        timeout_s: float = 1.0,
        max_connections: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prefix = prefix
        self.timeout_s = timeout_s
        self._url = url
        self._clock = clock
        self.pool: BlockingConnectionPool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            # One immediate retry: a pooled connection may be dead since Redis restarted; a second
            # failure is an outage, which must cost the request no more time.
            retry=Retry(NoBackoff(), 1),
        )
        self.client: Redis = Redis(connection_pool=self.pool)
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        """This process among the instances sharing the Redis (webhook consumer name, message origin)."""
        self._down_until = 0.0
        self._down = False
        self._blocking: list[Redis] = []

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisLink | None:
        """The link ``BFF_REDIS_URL`` configures, or ``None`` without it."""
        if settings.redis_url is None:
            return None
        return cls(
            settings.redis_url.get_secret_value(),
            prefix=settings.redis_prefix,
            timeout_s=settings.redis_timeout_ms / 1000,
            max_connections=settings.redis_max_connections,
        )

    @property
    def where(self) -> str:
        """Where the Redis is, for logs: ``host:port/db`` or the socket path, never credentials."""
        kwargs = self.pool.connection_kwargs
        if "path" in kwargs:
            return str(kwargs["path"])
        return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"

    def key(self, *parts: str) -> str:
        """``<prefix>:part:part``: a key no other key shares a command with."""
        return ":".join((self.prefix, *parts))

    def tagged(self, tag: str, *parts: str) -> str:
        """``{<prefix>:tag}:part``: a key in the Cluster slot of every other key with this ``tag``."""
        return ":".join((f"{{{self.prefix}:{tag}}}", *parts))

    @property
    def available(self) -> bool:
        """False for :data:`DOWN_S` after a command could not reach Redis."""
        return self._clock() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        """Count Redis as down for :data:`DOWN_S` (logged once per outage)."""
        self._down_until = self._clock() + DOWN_S
        if not self._down:
            self._down = True
            logger.warning(
                "redis %s unreachable (%s: %s): cache bypassed, rate limits not enforced, "
                "idempotent writes and webhooks refused with 503 until it is back",
                self.where,
                type(exc).__name__,
                exc,
            )

    def succeeded(self) -> None:
        """Note that a command reached Redis: it counts as up again at once (the end of an outage is
        logged)."""
        self._down_until = 0.0
        if self._down:
            self._down = False
            logger.info("redis %s reachable again", self.where)

    async def run(self, command: Callable[[Redis], Awaitable[T]]) -> T:
        """``await command(client)``; raises :class:`RedisUnavailable` when Redis cannot be reached
        (or could not less than :data:`DOWN_S` ago); errors Redis answers propagate."""
        if not self.available:
            raise RedisUnavailable(f"redis {self.where} is down")
        try:
            result = await command(self.client)
        except OUTAGE_ERRORS as exc:
            self.failed(exc)
            raise RedisUnavailable(f"redis {self.where}: {type(exc).__name__}: {exc}") from exc
        self.succeeded()
        return result

    def blocking_client(self, block_s: float) -> Redis:
        """A client of its own for a reader that blocks up to ``block_s`` seconds per command (its
        answers may take that long, plus the timeout). Closed with the link."""
        client: Redis = Redis.from_url(
            self._url,
            max_connections=2,
            socket_timeout=block_s + self.timeout_s,
            socket_connect_timeout=self.timeout_s,
            retry=Retry(NoBackoff(), 1),
        )
        self._blocking.append(client)
        return client

    async def ping(self) -> float | None:
        """Milliseconds a ``PING`` took, or ``None`` when Redis did not answer (for ``/readyz``).

        Tries even while Redis counts as down, so readiness shows a recovery at once.
        """
        started = self._clock()
        try:
            await self.client.ping()
        except OUTAGE_ERRORS as exc:
            self.failed(exc)
            return None
        self.succeeded()
        return (self._clock() - started) * 1000

    async def aclose(self) -> None:
        """Close every client and its connections."""
        for client in self._blocking:
            await client.aclose()
        self._blocking.clear()
        await self.client.aclose()
        await self.pool.aclose()


def raise_if_cancelling() -> None:
    """Raise ``CancelledError`` when the current task was asked to stop.

    Python 3.11's ``asyncio.timeout`` (which redis-py reads under) can turn a cancellation that
    arrives as its timeout expires into a ``TimeoutError``; a retry loop catching that must not
    carry on as if nothing was asked of it.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def stop_tasks(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait until they end, cancelling again should one swallow it (see
    :func:`raise_if_cancelling`)."""
    for task in tasks:
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()
