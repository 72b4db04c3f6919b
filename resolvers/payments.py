"""``payInvoice``: ask the payments service for a charge of an invoice's total.

The charge comes back ``PENDING``; the payments service settles it later and tells the BFF by webhook
(:func:`charge_events`, behind the kit's :mod:`bff.webhooks`), which publishes ``charge.succeeded``
or ``charge.failed``. The idempotency key
is claimed here and also sent to the payments service as ``Idempotency-Key``, so even a retry the BFF
does not remember (after a restart) charges once. Keys are per principal, and a replay checks again
that the principal may see the charge's invoice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from bff.context import Context
from bff.errors import DownstreamError
from bff.events import Event
from bff.graph.writes import (
    MutationResult,
    UserErrorRecord,
    check_id,
    check_idempotency_key,
    fingerprint,
    fresh_call,
    idempotency_scope,
    publish,
    run_once,
)
from bff.loaders import Record
from bff.webhooks import WebhookEndpoint, WebhookRejected
from bff_chinook.resolvers.access import check_customer_access
from bff_chinook.resolvers.errors import UserErrorCode
from bff_chinook.resolvers.resources import charges, invoices
from bff_chinook.resolvers.topics import CHARGE_CREATED, CHARGE_FAILED, CHARGE_SUCCEEDED

__all__ = ["PAYMENTS_WEBHOOK", "charge", "charge_events", "pay_invoice"]

IDEMPOTENCY_HEADER = "Idempotency-Key"

CHARGE_EVENT_TYPES = frozenset({CHARGE_SUCCEEDED, CHARGE_FAILED})
"""Webhook types that become bus events; other types are acknowledged and ignored."""


async def charge(ctx: Context, charge_id: str) -> Record | None:
    """One charge by id, as the payments service has it now."""
    return await charges.get(ctx, charge_id)


def charge_events(webhook_id: str, body: bytes) -> Sequence[Event]:
    """The events of a verified payments webhook: ``{"type": "charge.succeeded", "data": {"id": ...,
    "invoiceId": ..., "amount": ..., "status": ...}}`` publishes ``charge.succeeded`` (or
    ``charge.failed``) with ``{"charge": data}``; other types publish nothing.

    Raises :class:`~bff.webhooks.WebhookRejected` (400 ``WEBHOOK_MALFORMED``) for another shape.
    """
    try:
        payload = json.loads(body)
    except ValueError:
        raise WebhookRejected(400, "WEBHOOK_MALFORMED", "the body is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        raise WebhookRejected(400, "WEBHOOK_MALFORMED", "the body must be an object with a string type")
    if payload["type"] not in CHARGE_EVENT_TYPES:
        return ()
    data = payload.get("data")
    if not isinstance(data, dict) or not all(
        isinstance(data.get(name), str | int) and not isinstance(data.get(name), bool)
        for name in ("id", "invoiceId")
    ):
        raise WebhookRejected(400, "WEBHOOK_MALFORMED", "data must be a charge with an id and an invoiceId")
    if data.get("status") not in ("SUCCEEDED", "FAILED"):
        raise WebhookRejected(400, "WEBHOOK_MALFORMED", "data.status must be SUCCEEDED or FAILED")
    return (Event(payload["type"], {"charge": data}, id=webhook_id),)


PAYMENTS_WEBHOOK = WebhookEndpoint("payments", "/webhooks/payments", charge_events)
"""Where the payments service delivers its webhooks (Standard Webhooks, ``BFF_WEBHOOK_SECRETS``)."""


async def pay_invoice(ctx: Context, *, invoice_id: str, idempotency_key: str) -> MutationResult:
    """Charge the invoice's total once per ``idempotency_key``; returns the charge (``PENDING``).

    User errors: bad id or key, ``INVOICE_NOT_FOUND``, ``INVOICE_ALREADY_PAID`` (the payments service
    has a pending or successful charge for it), ``IDEMPOTENCY_KEY_REUSED``. Raises a
    :class:`~bff.errors.DownstreamError` when a service fails (nothing was charged, or the retry with
    the same key returns the charge that was made), and ``FORBIDDEN`` when the invoice, or the
    replayed charge's invoice, is another customer's. The key is the principal's own: another
    principal's equal key is a different request.
    """
    errors = [
        error
        for error in (
            check_id(invoice_id, "input", "invoiceId"),
            check_idempotency_key(idempotency_key, "input", "idempotencyKey"),
        )
        if error is not None
    ]
    if errors:
        return MutationResult(user_errors=errors)
    key = f"payInvoice:{idempotency_scope(ctx)}:{invoice_id}:{idempotency_key}"
    return await run_once(
        ctx,
        key,
        fingerprint({"invoiceId": invoice_id}),
        key_field=("input", "idempotencyKey"),
        work=lambda: _pay(ctx, invoice_id, key),
        remember=lambda record: {"chargeId": str(record["id"])},
        replay=lambda remembered: _replay(ctx, str(remembered["chargeId"])),
    )


async def _replay(ctx: Context, charge_id: str) -> Record | None:
    # The principal's scope and their access may differ from the first time (a token naming
    # another customer): check the access again before showing the charge.
    record = await charge(ctx, charge_id)
    invoice = None if record is None else await invoices.get(ctx, str(record.get("invoiceId")))
    check_customer_access(ctx, None if invoice is None else str(invoice.get("customerId")))
    return record


async def _pay(ctx: Context, invoice_id: str, key: str) -> MutationResult:
    invoice = await invoices.get(ctx, invoice_id)
    # A customer may pay only their own invoices; a missing one is FORBIDDEN too, so that a customer
    # cannot tell which invoice ids exist (as the invoice query does).
    check_customer_access(ctx, None if invoice is None else str(invoice.get("customerId")))
    if invoice is None:
        return MutationResult(
            user_errors=[
                UserErrorRecord(
                    ("input", "invoiceId"), f"no invoice {invoice_id}", UserErrorCode.INVOICE_NOT_FOUND
                )
            ]
        )
    body = {"invoiceId": invoice["id"], "amount": invoice["total"], "currency": "USD"}
    call = fresh_call(ctx, extra_headers=[(IDEMPOTENCY_HEADER, key)])
    try:
        response = await charges.request(ctx, "POST", json_body=body, call=call)
    except DownstreamError as exc:
        if exc.status == 409:
            return MutationResult(
                user_errors=[
                    UserErrorRecord(
                        ("input", "invoiceId"),
                        f"invoice {invoice_id} is paid or being paid already",
                        UserErrorCode.INVOICE_ALREADY_PAID,
                    )
                ]
            )
        raise
    record: Record = response.body
    charges.prime(ctx, [record])
    await publish(ctx, CHARGE_CREATED, {"charge": record})
    return MutationResult(record=record)
