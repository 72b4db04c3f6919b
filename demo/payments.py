"""The demo payments service: charges that settle later and are announced by signed webhooks.

A json-server-style REST service over one resource, ``charges``, plus behaviour of its own::

    POST /charges   {"invoiceId": 5, "amount": 3.96, "currency": "USD"}   (header Idempotency-Key optional)
                    201 the charge, status PENDING, with Location
                    the same Idempotency-Key again: 201 the same charge (Idempotent-Replayed: true)
                    that key with another body: 422; a pending or settled charge for the invoice: 409
                    a bad body: 400 {"error": "..."}
    GET  /charges, /charges/{id}, ... as json-server (filters, pages, 404 {})

After ``settle_delay_ms`` a charge settles, by a deterministic rule so tests can choose the outcome:
an amount of ``decline_from`` or more is ``FAILED`` (``failureReason: "card_declined"``), anything
less ``SUCCEEDED``. Then the service sends a webhook to ``webhook_url``, signed per Standard Webhooks
with ``webhook_secret`` (the ``standardwebhooks`` package)::

    POST <webhook_url>   webhook-id: msg_<charge id>_<succeeded|failed>
                         webhook-timestamp: <unix seconds>   webhook-signature: v1,<base64>
    {"type": "charge.succeeded", "timestamp": "...", "data": {<the charge>}}

Delivery retries with exponential backoff (``retry_initial_ms`` doubling up to ``retry_max_ms``,
``max_attempts`` in all) until an answer is 2xx; each attempt is signed anew with the current time.
``copies`` > 1 delivers every webhook that many times (each until 2xx), as at-least-once senders do,
so receivers see duplicates. Every attempt is recorded in :attr:`PaymentsService.deliveries`.

Change the config at run time with ``app[PAYMENTS].configure(...)`` (``bff demo`` and the tests
point the webhooks at the BFF once it listens).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import aiohttp
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from bff_chinook.demo.faults import FaultConfig
from bff_chinook.demo.rest import STORE, create_service_app

__all__ = [
    "PAYMENTS",
    "PAYMENTS_PORT",
    "PAYMENTS_SERVICE",
    "Delivery",
    "PaymentsConfig",
    "PaymentsService",
    "create_payments_app",
    "webhook_body",
]

logger = logging.getLogger("demo.payments")

PAYMENTS_SERVICE: Final = "payments"
PAYMENTS_PORT: Final = 8005
"""Where ``bff demo`` runs the payments service (the BFF's default payments URL points there)."""

_IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
_DELIVERY_TIMEOUT_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class PaymentsConfig:
    """How the demo payments service settles charges and delivers webhooks.

    Attributes:
        webhook_url: where webhooks go, or None to send none.
        webhook_secret: the Standard Webhooks secret (``whsec_<base64>``) signing them.
        settle_delay_ms: time from a charge's creation to its settlement.
        decline_from: amounts at or above this are declined (``FAILED``).
        copies: how many times each webhook is delivered (each until a 2xx answer).
        retry_initial_ms: wait before the first retry; it doubles per attempt.
        retry_max_ms: longest wait between attempts.
        max_attempts: attempts per copy before giving up.
    """

    webhook_url: str | None = None
    webhook_secret: str | None = None
    settle_delay_ms: float = 500.0
    decline_from: Decimal = Decimal("20.00")
    copies: int = 1
    retry_initial_ms: float = 100.0
    retry_max_ms: float = 5_000.0
    max_attempts: int = 10

    def __post_init__(self) -> None:
        if self.settle_delay_ms < 0 or self.retry_initial_ms < 0 or self.retry_max_ms < 0:
            raise ValueError("delays must be >= 0")
        if self.copies < 1 or self.max_attempts < 1:
            raise ValueError("copies and max_attempts must be >= 1")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery attempt: the webhook id, which copy and attempt, and the HTTP status (or error)."""

    webhook_id: str
    copy: int
    attempt: int
    status: int | None
    error: str | None = None


def signed_headers(signer: Webhook, webhook_id: str, body: str, at: datetime) -> dict[str, str]:
    """Standard Webhooks headers for ``body``: its id, the time ``at`` (UTC) and ``signer``'s signature."""
    return {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signer.sign(webhook_id, at, body),
    }


def webhook_body(kind: str, charge: dict[str, Any]) -> str:
    """The JSON body of a ``charge.succeeded`` or ``charge.failed`` webhook about a settled ``charge``:
    ``{"type": kind, "timestamp": <its settledAt>, "data": <the charge>}``, compact."""
    return json.dumps(
        {"type": kind, "timestamp": charge["settledAt"], "data": dict(charge)}, separators=(",", ":")
    )


def _bad(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _amount(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount > 0 else None


@dataclass
class PaymentsService:
    """The live state of the service: config, idempotency keys, settlement tasks, delivery log."""

    config: PaymentsConfig = field(default_factory=PaymentsConfig)
    deliveries: list[Delivery] = field(default_factory=list)
    _keys: dict[str, tuple[str, Any]] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _session: aiohttp.ClientSession | None = None

    def configure(self, **changes: Any) -> PaymentsConfig:
        """Replace some config fields (see :class:`PaymentsConfig`); returns the new config."""
        self.config = dataclasses.replace(self.config, **changes)
        return self.config

    def webhooks_to(self, webhook_id: str) -> list[Delivery]:
        """The delivery attempts of one webhook id."""
        return [delivery for delivery in self.deliveries if delivery.webhook_id == webhook_id]

    async def create_charge(self, request: web.Request) -> web.Response:
        """``POST /charges`` (see the module docstring)."""
        try:
            body = json.loads(await request.read() or b"null")
        except ValueError:
            return _bad("the body is not JSON")
        if not isinstance(body, dict):
            return _bad("expected a JSON object")
        invoice_id = body.get("invoiceId")
        amount = _amount(body.get("amount"))
        currency = body.get("currency", "USD")
        if isinstance(invoice_id, bool) or not isinstance(invoice_id, int | str) or invoice_id == "":
            return _bad("invoiceId is required")
        if amount is None:
            return _bad("amount must be a positive number")
        if not isinstance(currency, str) or len(currency) != 3:
            return _bad("currency must be a 3-letter code")
        key = request.headers.get(_IDEMPOTENCY_HEADER)
        store = request.app[STORE]
        fingerprint = json.dumps([invoice_id, str(amount), currency])
        if key is not None and key in self._keys:
            seen, charge_id = self._keys[key]
            if seen != fingerprint:
                return _bad("Idempotency-Key was used with another request", 422)
            charge = store.get("charges", charge_id)
            if charge is not None:
                return self._created(request, charge, replayed=True)
        for other in store.collections["charges"]:
            if str(other.get("invoiceId")) == str(invoice_id) and other.get("status") in (
                "PENDING",
                "SUCCEEDED",
            ):
                return _bad(f"invoice {invoice_id} has a {other['status'].lower()} charge already", 409)
        charge = {
            "id": store.new_id("charges"),
            "invoiceId": invoice_id,
            "amount": float(amount),
            "currency": currency.upper(),
            "status": "PENDING",
            "failureReason": None,
            "createdAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        store.insert("charges", charge)
        if key is not None:
            self._keys[key] = (fingerprint, charge["id"])
        task = asyncio.get_running_loop().create_task(self._settle(request.app, charge["id"]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return self._created(request, charge, replayed=False)

    def _created(self, request: web.Request, charge: dict[str, Any], *, replayed: bool) -> web.Response:
        headers = {"Location": f"{request.scheme}://{request.host}/charges/{charge['id']}"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return web.json_response(charge, status=201, headers=headers)

    async def _settle(self, app: web.Application, charge_id: Any) -> None:
        await asyncio.sleep(self.config.settle_delay_ms / 1000)
        charge = app[STORE].get("charges", charge_id)
        if charge is None or charge.get("status") != "PENDING":
            return
        declined = Decimal(str(charge["amount"])) >= self.config.decline_from
        charge["status"] = "FAILED" if declined else "SUCCEEDED"
        charge["failureReason"] = "card_declined" if declined else None
        charge["settledAt"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        kind = "charge.failed" if declined else "charge.succeeded"
        await self._deliver(f"msg_{charge_id}_{kind.removeprefix('charge.')}", webhook_body(kind, charge))

    async def _deliver(self, webhook_id: str, body: str) -> None:
        config = self.config
        if config.webhook_url is None or config.webhook_secret is None or self._session is None:
            logger.info("webhook %s not sent: no webhook_url or webhook_secret", webhook_id)
            return
        signer = Webhook(config.webhook_secret)
        for copy in range(1, config.copies + 1):
            wait_s = config.retry_initial_ms / 1000
            for attempt in range(1, config.max_attempts + 1):
                headers = signed_headers(signer, webhook_id, body, datetime.now(UTC))
                status: int | None = None
                error: str | None = None
                try:
                    async with self._session.post(
                        config.webhook_url,
                        data=body.encode(),
                        headers=headers,
                        timeout=aiohttp.ClientTimeout(total=_DELIVERY_TIMEOUT_S),
                    ) as response:
                        status = response.status
                        await response.read()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    error = type(exc).__name__
                self.deliveries.append(Delivery(webhook_id, copy, attempt, status, error))
                if status is not None and 200 <= status < 300:
                    break
                await asyncio.sleep(wait_s)
                wait_s = min(wait_s * 2, config.retry_max_ms / 1000)
            else:
                logger.warning("webhook %s copy %d given up after %d attempts", webhook_id, copy, attempt)

    async def lifecycle(self, _app: web.Application) -> AsyncIterator[None]:
        """``cleanup_ctx``: open the HTTP client for deliveries; cancel settlements on the way out."""
        self._session = aiohttp.ClientSession()
        try:
            yield
        finally:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self._session.close()
            self._session = None


PAYMENTS: Final = web.AppKey("payments", PaymentsService)


def create_payments_app(
    *, config: PaymentsConfig | None = None, faults: FaultConfig | None = None
) -> web.Application:
    """The payments service's app, with an empty ``charges`` resource; its state is under ``PAYMENTS``."""
    service = PaymentsService(config or PaymentsConfig())
    app = create_service_app(
        PAYMENTS_SERVICE,
        {"charges": []},
        faults=faults,
        routes=[web.post("/charges", service.create_charge)],
    )
    app[PAYMENTS] = service
    app.cleanup_ctx.append(service.lifecycle)
    return app
