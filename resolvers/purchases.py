"""``purchaseTracks``: an invoice and its lines in the sales service, priced from the catalog.

The steps, and what happens when one fails::

    check the input                      user errors, nothing called
    claim the idempotency key            a replay returns the first invoice; nothing is created
                                         (keys are per principal; FORBIDDEN if not theirs now)
    load the customer and the tracks     unknown ones are user errors; nothing created
    POST /invoices (total computed)      failure: look the invoice up by its purchase key, delete it
    POST /invoiceLines, one per track    failure: delete the lines and the invoice (compensation)
    publish invoice.created, complete the key

A failure after the invoice was created is reported as ``MUTATION_FAILED`` with ``rolledBack``
(whether compensation removed everything) and the downstream ``cause``; the key is released, so the
client may retry with it. The invoice carries its ``purchaseKey``, so an invoice whose POST timed out
(created, but its id never seen) is still found and removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from decimal import Decimal

from bff.context import Context
from bff.downstream import Call
from bff.errors import DownstreamError, NotFound
from bff.graph.writes import (
    MutationFailed,
    MutationResult,
    UserErrorRecord,
    as_ref,
    check_id,
    check_idempotency_key,
    fingerprint,
    fresh_call,
    idempotency_scope,
    publish,
    run_once,
)
from bff.loaders import Record
from bff_chinook.resolvers.access import check_customer_access
from bff_chinook.resolvers.errors import UserErrorCode
from bff_chinook.resolvers.resources import customers, invoice_lines, invoices, tracks
from bff_chinook.resolvers.topics import INVOICE_CREATED

__all__ = ["purchase_tracks"]

logger = logging.getLogger("bff.purchases")


def _check_input(
    customer_id: str, track_ids: list[str], idempotency_key: str, *, max_tracks: int
) -> list[UserErrorRecord]:
    errors = [
        error
        for error in (
            check_id(customer_id, "input", "customerId"),
            check_idempotency_key(idempotency_key, "input", "idempotencyKey"),
        )
        if error is not None
    ]
    if not track_ids:
        errors.append(
            UserErrorRecord(("input", "trackIds"), "choose at least one track", UserErrorCode.NO_TRACKS)
        )
    elif len(track_ids) > max_tracks:
        errors.append(
            UserErrorRecord(
                ("input", "trackIds"),
                f"at most {max_tracks} tracks per purchase (got {len(track_ids)})",
                UserErrorCode.TOO_MANY_TRACKS,
            )
        )
        return errors
    seen: set[str] = set()
    for index, track_id in enumerate(track_ids):
        path = ("input", "trackIds", str(index))
        error = check_id(track_id, *path)
        if error is not None:
            errors.append(error)
        elif track_id in seen:
            errors.append(
                UserErrorRecord(path, f"track {track_id} is listed twice", UserErrorCode.DUPLICATE_TRACK)
            )
        seen.add(track_id)
    return errors


async def purchase_tracks(
    ctx: Context, *, customer_id: str, track_ids: list[str], idempotency_key: str
) -> MutationResult:
    """Buy ``track_ids`` for ``customer_id`` once per ``idempotency_key`` (see the module docstring).

    Returns the invoice record, or user errors. Raises a :class:`~bff.errors.DownstreamError` when a
    service fails before anything was created, :class:`~resolvers.writes.MutationFailed` after, and
    ``FORBIDDEN`` when a replayed invoice is not one the principal may see.
    """
    errors = _check_input(
        customer_id, track_ids, idempotency_key, max_tracks=ctx.settings.purchase_max_tracks
    )
    if errors:
        return MutationResult(user_errors=errors)
    key = f"purchaseTracks:{idempotency_scope(ctx)}:{customer_id}:{idempotency_key}"
    digest = fingerprint({"customerId": customer_id, "trackIds": track_ids})
    return await run_once(
        ctx,
        key,
        digest,
        key_field=("input", "idempotencyKey"),
        work=lambda: _purchase(ctx, customer_id, track_ids, key),
        remember=lambda record: {"invoiceId": str(record["id"])},
        replay=lambda remembered: _replay(ctx, str(remembered["invoiceId"])),
    )


async def _replay(ctx: Context, invoice_id: str) -> Record | None:
    # Checked again on every replay, not only when the key was first claimed.
    invoice = await invoices.get(ctx, invoice_id)
    check_customer_access(ctx, None if invoice is None else str(invoice.get("customerId")))
    return invoice


async def _purchase(ctx: Context, customer_id: str, track_ids: list[str], key: str) -> MutationResult:
    customer, wanted = await asyncio.gather(customers.get(ctx, customer_id), tracks.get_many(ctx, track_ids))
    errors: list[UserErrorRecord] = []
    if customer is None:
        errors.append(
            UserErrorRecord(
                ("input", "customerId"), f"no customer {customer_id}", UserErrorCode.CUSTOMER_NOT_FOUND
            )
        )
    found: list[Record] = []
    for index, (track_id, track) in enumerate(zip(track_ids, wanted, strict=True)):
        if track is None:
            errors.append(
                UserErrorRecord(
                    ("input", "trackIds", str(index)), f"no track {track_id}", UserErrorCode.TRACK_NOT_FOUND
                )
            )
        else:
            found.append(track)
    if errors or customer is None:
        return MutationResult(user_errors=errors)

    total = sum((Decimal(str(track["unitPrice"])) for track in found), Decimal("0"))
    body = {
        "customerId": as_ref(customer_id),
        "invoiceDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "billingAddress": customer.get("address"),
        "billingCity": customer.get("city"),
        "billingState": customer.get("state"),
        "billingCountry": customer.get("country"),
        "billingPostalCode": customer.get("postalCode"),
        "total": float(total),
        "purchaseKey": key,
    }
    try:
        invoice: Record = (await invoices.request(ctx, "POST", json_body=body)).body
    except DownstreamError as exc:
        # The invoice may exist even so (the answer was lost): find it by its key and remove it.
        rolled_back = await _remove_by_key(ctx, key)
        raise _failed("the invoice could not be created", exc, rolled_back=rolled_back) from exc
    invoice_id = str(invoice["id"])
    try:
        for track in found:
            line = {
                "invoiceId": invoice["id"],
                "trackId": track["id"],
                "unitPrice": track["unitPrice"],
                "quantity": 1,
            }
            await invoice_lines.request(ctx, "POST", json_body=line)
    except DownstreamError as exc:
        rolled_back = await _compensate(ctx, invoice_id)
        raise _failed("an invoice line could not be created", exc, rolled_back=rolled_back) from exc

    await invoices.invalidate(ctx, ids=[invoice_id], fields={"customerId": customer_id})
    await invoice_lines.invalidate(ctx, fields={"invoiceId": invoice_id})
    invoices.prime(ctx, [invoice])
    await publish(ctx, INVOICE_CREATED, {"invoice": invoice})
    return MutationResult(record=invoice)


def _failed(what: str, exc: DownstreamError, *, rolled_back: bool) -> MutationFailed:
    outcome = "nothing was kept" if rolled_back else "cleaning up failed; support has been alerted"
    return MutationFailed(
        f"purchase failed: {what} ({exc.code}); {outcome}",
        cause=exc.code,
        service=exc.service,
        rolledBack=rolled_back,
    )


async def _remove_by_key(ctx: Context, key: str) -> bool:
    call = fresh_call(ctx)
    try:
        response = await invoices.client(ctx).get(
            "/invoices", call=call, params=[("purchaseKey", key)], cache=False
        )
    except DownstreamError:
        logger.error("purchase %s: cannot tell whether an invoice was created", key)
        return False
    found = response.body if isinstance(response.body, list) else []
    results = [await _compensate(ctx, str(invoice["id"]), call=call) for invoice in found]
    return all(results)


async def _compensate(ctx: Context, invoice_id: str, *, call: Call | None = None) -> bool:
    """Delete an invoice and its lines; return whether everything is gone."""
    call = call or fresh_call(ctx)
    client = invoice_lines.client(ctx)
    try:
        response = await client.get(
            "/invoiceLines", call=call, params=[("invoiceId", invoice_id)], cache=False
        )
        lines = response.body if isinstance(response.body, list) else []
        for line in lines:
            await _delete(ctx, f"/invoiceLines/{line['id']}", call)
        await _delete(ctx, f"/invoices/{invoice_id}", call)
    except DownstreamError as exc:
        logger.error("purchase compensation left invoice %s behind: %s", invoice_id, exc.code)
        return False
    await invoices.invalidate(ctx, ids=[invoice_id])
    await invoice_lines.invalidate(ctx, fields={"invoiceId": invoice_id})
    return True


async def _delete(ctx: Context, path: str, call: Call) -> None:
    with contextlib.suppress(NotFound):  # gone already: what compensation wants
        await invoices.client(ctx).request("DELETE", path, call=call)
