"""Webhook ingress: the app's webhook endpoints, signed per Standard Webhooks, processed once each.

An app declares each endpoint as a :class:`WebhookEndpoint`: a path and a handler that turns a
verified body into the events to publish (or refuses it with :class:`WebhookRejected`, 400)::

    WebhookEndpoint("payments", "/webhooks/payments", handle=charge_events)

What a delivery goes through, in order; the body is not parsed before its signature is verified::

    no secret configured             503 WEBHOOKS_NOT_CONFIGURED
    body over the limit              413 WEBHOOK_TOO_LARGE
    a webhook-* header missing       401 WEBHOOK_SIGNATURE_MISSING
    webhook-id not 1-256 printable   400 WEBHOOK_ID_INVALID               (ASCII, no spaces)
    timestamp not 1-15 ASCII digits  400 WEBHOOK_TIMESTAMP_INVALID        (unix time in seconds)
    timestamp not within tolerance   401 WEBHOOK_TIMESTAMP_OUT_OF_RANGE   (replays of old deliveries)
    no secret matches the signature  401 WEBHOOK_SIGNATURE_INVALID
    the handler refuses the body     400 WEBHOOK_MALFORMED (or the handler's code)
    webhook-id seen before           200 {"status": "duplicate"}          (nothing happens again)
    webhook-id reused for another body 409 WEBHOOK_ID_REUSED
    processing queue full            503 WEBHOOK_BUSY with Retry-After    (the sender retries)
    the queue's storage unreachable  503 WEBHOOK_UNAVAILABLE with Retry-After
    otherwise                        202 {"status": "accepted"}

Errors are ``{"error": {"code": ..., "message": ...}}``. Several secrets may be configured at once
(``BFF_WEBHOOK_SECRETS``), so a secret can be rotated without losing deliveries: add the new one, let
the sender switch, remove the old one.

Where accepted deliveries wait is a :class:`WebhookQueue`: the ``webhook-id`` is recorded and the
handler's events queued before the 2xx, and a worker publishes them on the event bus afterwards.
:class:`InMemoryWebhookQueue` (the default) claims the id in the idempotency store and queues in the
process: a crash between the 2xx and the publish loses that event, and a restart forgets which ids
were seen. With ``BFF_REDIS_URL``, :class:`bff.redis.webhooks.RedisWebhookQueue` writes both to Redis
before the 2xx and any instance's worker publishes, so neither is lost. On a clean shutdown the
worker drains what this process holds first.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bff.events import EVENT_BUS, Event, EventBus
from bff.idempotency import (
    IDEMPOTENCY,
    ClaimState,
    IdempotencyStore,
    IdempotencyStoreFull,
    IdempotencyStoreUnavailable,
)
from bff.settings import Settings, SettingsError

__all__ = [
    "WEBHOOKS",
    "WEBHOOK_RESULTS",
    "Acceptance",
    "InMemoryWebhookQueue",
    "WebhookEndpoint",
    "WebhookHandler",
    "WebhookIngress",
    "WebhookQueue",
    "WebhookQueueUnavailable",
    "WebhookRejected",
    "WebhookResults",
    "WebhookVerifier",
    "setup_webhooks",
]

logger = logging.getLogger("bff.webhooks")

_REQUIRED_HEADERS: Final = ("webhook-id", "webhook-timestamp", "webhook-signature")
_WEBHOOK_ID: Final = re.compile(r"[\x21-\x7e]{1,256}")
"""Ids are kept in the idempotency store for a day: bounded, and printable so they log safely."""
_TIMESTAMP: Final = re.compile(r"[0-9]{1,15}")
"""ASCII digits only: ``str.isdigit`` accepts "²", which ``int`` refuses; 15 digits fit a float."""
_DRAIN_TIMEOUT_S: Final = 5.0


class WebhookRejected(Exception):
    """A delivery the BFF refuses: HTTP ``status`` with an error ``code`` and ``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> web.Response:
        """The JSON error response."""
        body = {"error": {"code": self.code, "message": self.message}}
        return web.json_response(body, status=self.status)


class WebhookVerifier:
    """Checks Standard Webhooks signatures against several secrets and a timestamp tolerance.

    ``secrets`` are ``whsec_<base64>`` strings (the prefix is optional). Raises ``ValueError`` for a
    secret that is not base64 or is empty.
    """

    def __init__(
        self, secrets: Sequence[str], *, tolerance_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        try:
            self._webhooks = [Webhook(secret) for secret in secrets]
        except Exception as exc:  # binascii.Error, EmptyWebhookSecretError
            raise ValueError(f"a secret is not valid base64 ({type(exc).__name__})") from None
        self.tolerance_s = tolerance_s
        self._clock = clock

    @property
    def configured(self) -> bool:
        """Whether any secret is configured."""
        return bool(self._webhooks)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        """Return the ``webhook-id`` of a delivery whose signature and timestamp check out.

        Raises :class:`WebhookRejected` otherwise: 401 for a header missing, a timestamp out of
        tolerance or no matching signature; 400 (``WEBHOOK_ID_INVALID``, ``WEBHOOK_TIMESTAMP_INVALID``)
        for a malformed ``webhook-id`` or ``webhook-timestamp``, before any signature is computed.
        """
        lowered = {name.lower(): value for name, value in headers.items()}
        if not all(lowered.get(name) for name in _REQUIRED_HEADERS):
            raise WebhookRejected(
                401, "WEBHOOK_SIGNATURE_MISSING", f"headers {', '.join(_REQUIRED_HEADERS)} are required"
            )
        if not _WEBHOOK_ID.fullmatch(lowered["webhook-id"]):
            raise WebhookRejected(
                400, "WEBHOOK_ID_INVALID", "webhook-id must be 1-256 printable ASCII characters, no spaces"
            )
        timestamp = lowered["webhook-timestamp"]
        if not _TIMESTAMP.fullmatch(timestamp):
            raise WebhookRejected(
                400, "WEBHOOK_TIMESTAMP_INVALID", "webhook-timestamp must be a unix time in whole seconds"
            )
        if abs(self._clock() - int(timestamp)) > self.tolerance_s:
            raise WebhookRejected(
                401,
                "WEBHOOK_TIMESTAMP_OUT_OF_RANGE",
                f"webhook-timestamp must be within {self.tolerance_s:g} s of now",
            )
        signed = {name: lowered[name] for name in _REQUIRED_HEADERS}
        for webhook in self._webhooks:
            # ValueError covers a signature without a comma, bad base64 and a body that is not UTF-8.
            with contextlib.suppress(WebhookVerificationError, ValueError):
                webhook.verify(body, signed, json_parse=False)
                return lowered["webhook-id"]
        raise WebhookRejected(401, "WEBHOOK_SIGNATURE_INVALID", "no configured secret matches the signature")


WebhookHandler = Callable[[str, bytes], Sequence[Event]]
"""``handle(webhook_id, body)``: the events a verified delivery publishes (none: acknowledged and
ignored). Raises :class:`WebhookRejected` (400) for a body it cannot use; must not block."""


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """One webhook endpoint an app declares: a ``name`` (part of the idempotency key of its
    deliveries), the ``path`` senders POST to, and the ``handle`` function of its deliveries."""

    name: str
    path: str
    handle: WebhookHandler


class Acceptance(enum.Enum):
    """What a :class:`WebhookQueue` did with a delivery."""

    ACCEPTED = "accepted"
    """Recorded and queued: answer 202."""
    DUPLICATE = "duplicate"
    """The id was seen with this body before: answer 200, do nothing."""
    CONFLICT = "conflict"
    """The id was seen with another body: answer 409."""
    BUSY = "busy"
    """Too many deliveries waiting: answer 503 with ``Retry-After``."""


class WebhookQueueUnavailable(Exception):
    """The queue's storage cannot be reached; nothing was recorded. Retry after ``retry_after_s``."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class WebhookQueue(Protocol):
    """Where accepted deliveries wait for a worker to publish their events, once per id."""

    processed: int
    """Deliveries this process's worker published since start."""

    async def accept(self, key: str, fingerprint: str, events: Sequence[Event]) -> Acceptance:
        """Record the delivery ``key`` (``webhook:<endpoint>:<webhook-id>``) with its body's
        ``fingerprint`` and queue ``events``, before the sender is answered.

        Raises :class:`WebhookQueueUnavailable` when that cannot be done now.
        """
        ...

    async def run(self) -> None:
        """Publish accepted deliveries until cancelled."""
        ...

    async def drain(self, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) until what this process holds is published."""
        ...


class InMemoryWebhookQueue:
    """A :class:`WebhookQueue` in the process: ids claimed in the idempotency ``store``, at most
    ``queue_size`` deliveries waiting, events published on ``bus``. Lost if the process dies."""

    def __init__(self, store: IdempotencyStore, bus: EventBus, *, queue_size: int) -> None:
        self.store = store
        self.bus = bus
        self._queue: asyncio.Queue[tuple[str, Sequence[Event]]] = asyncio.Queue(maxsize=queue_size)
        self.processed = 0

    async def accept(self, key: str, fingerprint: str, events: Sequence[Event]) -> Acceptance:
        """See :meth:`WebhookQueue.accept`."""
        try:
            claim = await self.store.claim(key, fingerprint)
        except IdempotencyStoreFull:
            return Acceptance.BUSY
        except IdempotencyStoreUnavailable as exc:
            raise WebhookQueueUnavailable(str(exc), retry_after_s=exc.retry_after_s) from exc
        if claim.state is ClaimState.CONFLICT:
            return Acceptance.CONFLICT
        if claim.state is not ClaimState.NEW:
            return Acceptance.DUPLICATE
        try:
            self._queue.put_nowait((key, events))
        except asyncio.QueueFull:
            await self.store.release(key)
            return Acceptance.BUSY
        return Acceptance.ACCEPTED

    async def _process(self, key: str, events: Sequence[Event]) -> None:
        for event in events:
            await self.bus.publish(event)
        await self.store.complete(key, {"events": [event.topic for event in events]})
        self.processed += 1

    async def run(self) -> None:
        """See :meth:`WebhookQueue.run`."""
        while True:
            key, events = await self._queue.get()
            try:
                await self._process(key, events)
            except Exception:
                # Accepted already: the sender will not redeliver. Log loudly so it can be replayed.
                logger.exception("webhook %s accepted but not processed", key)
            finally:
                self._queue.task_done()

    async def drain(self, timeout_s: float = _DRAIN_TIMEOUT_S) -> None:
        """See :meth:`WebhookQueue.drain`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._queue.join()


WebhookResults = Callable[[str, str, str | None], None]
"""``results(endpoint, outcome, code)`` after each delivery: ``accepted``, ``duplicate`` or ``refused``
with the error code (for metrics)."""


class WebhookIngress:
    """Accepts an app's webhooks and processes each ``webhook-id`` once (see the module docstring).

    ``results`` hears the outcome of every delivery.
    """

    def __init__(
        self,
        verifier: WebhookVerifier,
        queue: WebhookQueue,
        *,
        max_body_bytes: int,
        results: WebhookResults | None = None,
    ) -> None:
        self.results = results
        self.verifier = verifier
        self.queue = queue
        self.max_body_bytes = max_body_bytes

    @property
    def processed(self) -> int:
        """Webhooks this process published since start."""
        return self.queue.processed

    async def handle(self, request: web.Request, endpoint: WebhookEndpoint) -> web.Response:
        """The handler of ``POST endpoint.path``."""
        try:
            response = await self._accept(request, endpoint)
        except WebhookRejected as rejected:
            logger.info("webhook %s rejected: %s %s", endpoint.name, rejected.status, rejected.code)
            if self.results is not None:
                self.results(endpoint.name, "refused", rejected.code)
            return rejected.response()
        if self.results is not None:
            outcome = {202: ("accepted", None), 200: ("duplicate", None)}.get(
                response.status, ("refused", "WEBHOOK_BUSY")
            )
            self.results(endpoint.name, *outcome)
        return response

    async def _accept(self, request: web.Request, endpoint: WebhookEndpoint) -> web.Response:
        if not self.verifier.configured:
            raise WebhookRejected(503, "WEBHOOKS_NOT_CONFIGURED", "no webhook secret is configured")
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            raise WebhookRejected(413, "WEBHOOK_TOO_LARGE", f"the body exceeds {self.max_body_bytes} bytes")
        body = await request.read()
        if len(body) > self.max_body_bytes:
            raise WebhookRejected(413, "WEBHOOK_TOO_LARGE", f"the body exceeds {self.max_body_bytes} bytes")
        webhook_id = self.verifier.verify(body, request.headers)
        events = endpoint.handle(webhook_id, body)
        key = f"webhook:{endpoint.name}:{webhook_id}"
        try:
            accepted = await self.queue.accept(key, hashlib.sha256(body).hexdigest(), events)
        except WebhookQueueUnavailable as exc:
            logger.warning("webhook %s refused: %s", key, exc)
            return _retry_later("WEBHOOK_UNAVAILABLE", "webhooks cannot be recorded now", exc.retry_after_s)
        if accepted is Acceptance.CONFLICT:
            raise WebhookRejected(409, "WEBHOOK_ID_REUSED", "this webhook-id came with another body before")
        if accepted is Acceptance.DUPLICATE:
            return web.json_response({"status": "duplicate"}, status=200)
        if accepted is Acceptance.BUSY:
            return _retry_later("WEBHOOK_BUSY", "too many webhooks waiting to be processed", 1)
        return web.json_response({"status": "accepted"}, status=202)

    async def run(self) -> None:
        """Process accepted webhooks until cancelled."""
        await self.queue.run()

    async def drain(self, timeout_s: float = _DRAIN_TIMEOUT_S) -> None:
        """Wait until every accepted webhook this process holds is processed (at most ``timeout_s``)."""
        await self.queue.drain(timeout_s)


def _retry_later(code: str, message: str, retry_after_s: int) -> web.Response:
    response = WebhookRejected(503, code, message).response()
    response.headers["Retry-After"] = str(retry_after_s)
    return response


WEBHOOKS: Final = web.AppKey("bff.webhooks", WebhookIngress)
"""Where the app keeps its :class:`WebhookIngress`."""
WEBHOOK_RESULTS: Final[web.AppKey[WebhookResults]] = web.AppKey("bff.webhook_results")
"""Who hears each delivery's outcome (set by :func:`bff.app.create_app` when metrics are on)."""


def setup_webhooks(
    app: web.Application,
    settings: Settings,
    endpoints: Sequence[WebhookEndpoint],
    *,
    queue: WebhookQueue | None = None,
) -> None:
    """Add ``POST`` routes for the app's webhook ``endpoints`` and the worker that processes what they
    accept; nothing without endpoints.

    ``queue`` holds accepted deliveries; by default an :class:`InMemoryWebhookQueue` over the app's
    event bus and idempotency store (under :data:`~bff.events.EVENT_BUS` and
    :data:`~bff.idempotency.IDEMPOTENCY` by start-up). Raises :class:`~bff.settings.SettingsError`
    for a secret that is not valid.
    """
    if not endpoints:
        return
    try:
        verifier = WebhookVerifier(
            [secret.get_secret_value() for secret in settings.webhook_secrets],
            tolerance_s=settings.webhook_tolerance_s,
        )
    except ValueError as exc:
        raise SettingsError(f"BFF_WEBHOOK_SECRETS: {exc}") from None

    async def webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
        held = queue or InMemoryWebhookQueue(
            app[IDEMPOTENCY], app[EVENT_BUS], queue_size=settings.webhook_queue_size
        )
        ingress = WebhookIngress(
            verifier,
            held,
            max_body_bytes=settings.webhook_max_body_bytes,
            results=app.get(WEBHOOK_RESULTS),
        )
        app[WEBHOOKS] = ingress
        worker = asyncio.create_task(ingress.run(), name="bff-webhooks")
        try:
            yield
        finally:
            await ingress.drain()
            # Cancel again if the worker swallowed it (a Redis read's timeout can, on Python 3.11).
            while not worker.done():
                worker.cancel()
                await asyncio.wait({worker}, timeout=0.1)
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    app.cleanup_ctx.append(webhooks_ctx)
    for endpoint in endpoints:
        app.router.add_post(endpoint.path, _route(endpoint))


def _route(endpoint: WebhookEndpoint) -> Callable[[web.Request], Any]:
    async def handle(request: web.Request) -> web.Response:
        return await request.app[WEBHOOKS].handle(request, endpoint)

    return handle
