"""What every mutation shares: user errors, input checks, idempotency, events.

Mutations answer Shopify style: the changed object plus ``userErrors`` (``field``, ``message``,
``code``) for anything the client can fix. Failures that are not the client's (a service down) are
GraphQL errors with ``extensions.code`` instead. An app's ``UserErrorCode`` enum lists its own codes
and the kit's (:class:`KitUserErrorCode`), so every code a mutation may answer is in the schema.
What a write makes stale is :meth:`bff.graph.resource.Resource.invalidate`'s.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from bff.context import Context
from bff.downstream import Call
from bff.errors import BFFError
from bff.events import Event
from bff.idempotency import ClaimState, IdempotencyStore, IdempotencyStoreFull, IdempotencyStoreUnavailable
from bff.loaders import Record

__all__ = [
    "ClaimOutcome",
    "IdempotencyUnavailable",
    "KitUserErrorCode",
    "MutationFailed",
    "MutationResult",
    "TooBusy",
    "UserErrorRecord",
    "as_ref",
    "check_id",
    "check_idempotency_key",
    "claim",
    "fingerprint",
    "fresh_call",
    "idempotency_scope",
    "publish",
    "run_once",
    "store",
]

_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_IDEMPOTENCY_KEY: Final = re.compile(r"[\x21-\x7e]{1,255}")
IDEMPOTENCY_WAIT_S: Final = 10.0
"""How long a request waits for a concurrent request with the same idempotency key to finish."""


class MutationFailed(BFFError):
    """A mutation could not be completed for a reason that is not the client's; nothing was left half done
    unless ``extensions.rolledBack`` is false."""

    code = "MUTATION_FAILED"


class TooBusy(BFFError):
    """The BFF cannot take more mutations with idempotency keys right now; retry shortly."""

    code = "TOO_BUSY"


class IdempotencyUnavailable(BFFError):
    """Idempotency keys cannot be checked now (their store, Redis, is unreachable), so the mutation was
    not run; retry after ``extensions.retryAfter`` seconds. An operation that did nothing else is a
    request error with HTTP 503 and ``Retry-After`` (:mod:`bff.operation.schema`)."""

    code = "IDEMPOTENCY_UNAVAILABLE"


class KitUserErrorCode(enum.Enum):
    """The user error codes the kit's checks answer; an app's ``UserErrorCode`` enum repeats them."""

    INVALID_ID = "INVALID_ID"
    INVALID_IDEMPOTENCY_KEY = "INVALID_IDEMPOTENCY_KEY"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    IDEMPOTENCY_KEY_IN_USE = "IDEMPOTENCY_KEY_IN_USE"


@dataclass(frozen=True, slots=True)
class UserErrorRecord:
    """One problem with the input: the path of the input ``field``, a ``message`` and a ``code``
    (a member of the app's ``UserErrorCode`` enum or of :class:`KitUserErrorCode`)."""

    field: tuple[str, ...]
    message: str
    code: enum.Enum

    @property
    def code_name(self) -> str:
        """The code as the schema's enum names it."""
        return str(self.code.value)


@dataclass(frozen=True, slots=True)
class MutationResult:
    """What a mutation resolver returns: the record it made or changed, or the user errors."""

    record: Record | None = None
    user_errors: list[UserErrorRecord] = field(default_factory=list)


def check_id(value: str, *path: str) -> UserErrorRecord | None:
    """A user error when ``value`` is not a plausible id (1-64 letters, digits, ``_`` or ``-``)."""
    if _ID.fullmatch(value):
        return None
    return UserErrorRecord(path, f"{value!r} is not a valid id", KitUserErrorCode.INVALID_ID)


def check_idempotency_key(value: str, *path: str) -> UserErrorRecord | None:
    """A user error when ``value`` is not 1-255 printable ASCII characters without spaces."""
    if _IDEMPOTENCY_KEY.fullmatch(value):
        return None
    return UserErrorRecord(
        path,
        "an idempotency key is 1-255 printable ASCII characters without spaces (a UUID works)",
        KitUserErrorCode.INVALID_IDEMPOTENCY_KEY,
    )


def as_ref(value: str) -> int | str:
    """An id as the downstream stores it: numeric ids as numbers (Chinook's), others as strings."""
    return int(value) if value.isdigit() and len(value) < 19 else value


def fingerprint(payload: Mapping[str, Any]) -> str:
    """A stable hash of a mutation's input, to tell a replay from a different request with the same key."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def idempotency_scope(ctx: Context) -> str:
    """Whose idempotency keys a mutation claims: a digest of the principal, ``anonymous`` without one.

    Keys are per principal, so one client's key never replays another client's result. A digest,
    because the scoped key also goes downstream (``Idempotency-Key``, ``purchaseKey``), and a JWT
    subject may be an email address.
    """
    if ctx.principal is None:
        return "anonymous"
    return hashlib.sha256(ctx.principal.rate_limit_key.encode()).hexdigest()[:16]


def store(ctx: Context) -> IdempotencyStore:
    """The app's idempotency store; ``RuntimeError`` outside an app."""
    if ctx.idempotency is None:
        raise RuntimeError("this context has no idempotency store")
    return ctx.idempotency


@dataclass(frozen=True, slots=True)
class ClaimOutcome:
    """What to do after claiming a key: go ahead (``owned``), replay ``result``, or report ``error``."""

    owned: bool = False
    result: Mapping[str, Any] | None = None
    error: UserErrorRecord | None = None


async def claim(ctx: Context, key: str, digest: str, *, key_field: Sequence[str]) -> ClaimOutcome:
    """Claim an idempotency key; waits for a concurrent request with the same key to finish first.

    Returns ``owned`` (do the work, then complete or release the key), a ``result`` to replay, or
    a user error (key reused for another input, or still in use after waiting). Raises
    :class:`TooBusy` when the store cannot take the key, :class:`IdempotencyUnavailable` when it
    cannot be reached.
    """
    try:
        return await _claim(store(ctx), key, digest, tuple(key_field))
    except IdempotencyStoreUnavailable as exc:
        raise IdempotencyUnavailable(
            "idempotency keys cannot be checked now; nothing was done, retry later",
            retryAfter=exc.retry_after_s,
        ) from None


async def _claim(keys: IdempotencyStore, key: str, digest: str, path: tuple[str, ...]) -> ClaimOutcome:
    for _ in range(3):
        try:
            found = await keys.claim(key, digest)
        except IdempotencyStoreFull:
            raise TooBusy("too many requests in progress; try again shortly") from None
        if found.state is ClaimState.NEW:
            return ClaimOutcome(owned=True)
        if found.state is ClaimState.DONE:
            return ClaimOutcome(result=found.result)
        if found.state is ClaimState.CONFLICT:
            return ClaimOutcome(
                error=UserErrorRecord(
                    path,
                    "this idempotency key was used for a different request",
                    KitUserErrorCode.IDEMPOTENCY_KEY_REUSED,
                )
            )
        waited = await keys.wait(key, IDEMPOTENCY_WAIT_S)
        if waited is None:
            break
        if waited.state is ClaimState.DONE:
            return ClaimOutcome(result=waited.result)
    return ClaimOutcome(
        error=UserErrorRecord(
            path,
            "a request with this idempotency key is still in progress",
            KitUserErrorCode.IDEMPOTENCY_KEY_IN_USE,
        )
    )


async def run_once(
    ctx: Context,
    key: str,
    digest: str,
    *,
    key_field: Sequence[str],
    work: Callable[[], Awaitable[MutationResult]],
    remember: Callable[[Record], dict[str, Any]],
    replay: Callable[[Mapping[str, Any]], Awaitable[Record | None]],
) -> MutationResult:
    """Run ``work`` at most once per idempotency ``key`` (see :func:`claim`).

    A new key runs ``work``; its record is remembered as ``remember(record)``, while user errors or
    an exception release the key so the client may retry. A completed key answers
    ``replay(remembered)`` without running ``work`` again.
    """
    claimed = await claim(ctx, key, digest, key_field=key_field)
    if claimed.error is not None:
        return MutationResult(user_errors=[claimed.error])
    if claimed.result is not None:
        return MutationResult(record=await replay(claimed.result))
    keys = store(ctx)
    try:
        result = await work()
    except BaseException:
        await keys.release(key)
        raise
    if result.record is None:
        await keys.release(key)
    else:
        await keys.complete(key, remember(result.record))
    return result


def fresh_call(ctx: Context, *, extra_headers: Sequence[tuple[str, str]] = ()) -> Call:
    """The operation's call with a deadline of its own from now, for steps that must run to the end
    (compensation after a timeout) or that need extra headers (``Idempotency-Key``)."""
    deadline = asyncio.get_running_loop().time() + ctx.settings.operation_timeout_ms / 1000
    return replace(ctx.call, headers=(*ctx.call.headers, *extra_headers), deadline=deadline)


async def publish(ctx: Context, topic: str, data: Mapping[str, Any]) -> None:
    """Publish an event on the app's bus; ``RuntimeError`` outside an app."""
    if ctx.events is None:
        raise RuntimeError("this context has no event bus")
    await ctx.events.publish(Event(topic, data))
