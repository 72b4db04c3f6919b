"""Mutations follow the same access rule as queries: a customer changes only their own data."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.e2e.live import Live, run_live
from tests.support.tokens import SECRET, customer, employee, token

ALICE, BOB = "21", "22"
PURCHASE = """
mutation ($customerId: ID!, $key: String!) {
  purchaseTracks(input: {customerId: $customerId, trackIds: ["1", "2"], idempotencyKey: $key}) {
    invoice { id customer { id } }
    userErrors { code }
  }
}
"""
PAY = """
mutation ($invoiceId: ID!, $key: String!) {
  payInvoice(input: {invoiceId: $invoiceId, idempotencyKey: $key}) {
    payment { id status }
    userErrors { code }
  }
}
"""


@pytest.fixture(scope="module")
async def live() -> AsyncIterator[Live]:
    """A BFF that requires a principal, over demo services of these tests alone."""
    async with run_live("mutation-auth", BFF_JWT_HS256_SECRET=SECRET, BFF_AUTH_REQUIRED="true") as running:
        yield running


async def post(
    live: Live, query: str, variables: dict[str, Any], authorization: str | None
) -> dict[str, Any]:
    """The whole response body of one operation sent as ``authorization``."""
    headers = None if authorization is None else {"Authorization": authorization}
    return await live.stack.post(query, variables, headers=headers)


def code_of(body: dict[str, Any]) -> str:
    """The extensions.code of the response's only error."""
    [error] = body["errors"]
    return str(error["extensions"]["code"])


async def test_customer_buys_only_for_themselves(live: Live) -> None:
    """Alice may buy for herself; buying for Bob is FORBIDDEN and creates no invoice."""
    key = uuid.uuid4().hex
    invoices_before = len(await live.records("sales", "/invoices"))
    refused = await post(live, PURCHASE, {"customerId": BOB, "key": key}, customer(ALICE))
    assert code_of(refused) == "FORBIDDEN"
    assert refused["data"] == {"purchaseTracks": None}
    assert len(await live.records("sales", "/invoices")) == invoices_before

    bought = await post(live, PURCHASE, {"customerId": ALICE, "key": key}, customer(ALICE))
    assert "errors" not in bought
    assert bought["data"]["purchaseTracks"]["invoice"]["customer"] == {"id": ALICE}


async def test_customer_pays_only_their_own_invoices(live: Live) -> None:
    """Paying Bob's invoice, or one that does not exist, is FORBIDDEN for Alice and charges nothing."""
    bobs = await live.mutate(PURCHASE, {"customerId": BOB, "key": uuid.uuid4().hex}, authorization=employee())
    invoice_id = bobs["purchaseTracks"]["invoice"]["id"]
    charges_before = await live.records("payments", "/charges")
    for target in (invoice_id, "999999"):
        refused = await post(live, PAY, {"invoiceId": target, "key": uuid.uuid4().hex}, customer(ALICE))
        assert code_of(refused) == "FORBIDDEN"
    assert await live.records("payments", "/charges") == charges_before

    paid = await post(live, PAY, {"invoiceId": invoice_id, "key": uuid.uuid4().hex}, customer(BOB))
    assert paid["data"]["payInvoice"]["payment"]["status"] == "PENDING"


async def test_anonymous_changes_need_sign_in(live: Live) -> None:
    """With sign-in required, anonymous purchases and playlist edits are UNAUTHENTICATED."""
    purchase = await post(live, PURCHASE, {"customerId": ALICE, "key": uuid.uuid4().hex}, None)
    assert code_of(purchase) == "UNAUTHENTICATED"
    playlist = await post(
        live, 'mutation { createPlaylist(input: {name: "Mine"}) { playlist { id } } }', {}, None
    )
    assert code_of(playlist) == "UNAUTHENTICATED"
    signed_in = await post(
        live, 'mutation { createPlaylist(input: {name: "Mine"}) { playlist { id } } }', {}, customer(ALICE)
    )
    assert signed_in["data"]["createPlaylist"]["playlist"]["id"]


async def test_another_customers_idempotency_key_replays_nothing(live: Live) -> None:
    """Alice sending Bob's idempotency key for Bob's invoice gets FORBIDDEN, not Bob's charge."""
    bobs = await live.mutate(PURCHASE, {"customerId": BOB, "key": uuid.uuid4().hex}, authorization=employee())
    invoice_id = bobs["purchaseTracks"]["invoice"]["id"]
    key = uuid.uuid4().hex
    paid = await post(live, PAY, {"invoiceId": invoice_id, "key": key}, customer(BOB))
    assert paid["data"]["payInvoice"]["payment"]["status"] == "PENDING"
    replayed = await post(live, PAY, {"invoiceId": invoice_id, "key": key}, customer(ALICE))
    assert code_of(replayed) == "FORBIDDEN"
    assert replayed["data"] == {"payInvoice": None}


async def test_idempotency_keys_are_per_principal(live: Live) -> None:
    """One key from two principals is two requests: Alice's purchase does not replay the employee's."""
    key = uuid.uuid4().hex
    by_staff = await live.mutate(PURCHASE, {"customerId": ALICE, "key": key}, authorization=employee())
    by_alice = await live.mutate(PURCHASE, {"customerId": ALICE, "key": key}, authorization=customer(ALICE))
    again = await live.mutate(PURCHASE, {"customerId": ALICE, "key": key}, authorization=customer(ALICE))
    staff_invoice = by_staff["purchaseTracks"]["invoice"]["id"]
    alice_invoice = by_alice["purchaseTracks"]["invoice"]["id"]
    assert staff_invoice != alice_invoice
    assert again["purchaseTracks"]["invoice"]["id"] == alice_invoice


async def test_replays_check_ownership_again(live: Live) -> None:
    """A replay is FORBIDDEN when the principal may no longer see the invoice (its token now names
    another customer), though the key and subject are the same."""
    bobs = await live.mutate(PURCHASE, {"customerId": BOB, "key": uuid.uuid4().hex}, authorization=employee())
    invoice_id = bobs["purchaseTracks"]["invoice"]["id"]
    key = uuid.uuid4().hex
    as_bob = f"Bearer {token(sub='shared-login', customer_id=BOB)}"
    as_alice = f"Bearer {token(sub='shared-login', customer_id=ALICE)}"
    paid = await post(live, PAY, {"invoiceId": invoice_id, "key": key}, as_bob)
    assert paid["data"]["payInvoice"]["payment"]["status"] == "PENDING"
    replayed = await post(live, PAY, {"invoiceId": invoice_id, "key": key}, as_alice)
    assert code_of(replayed) == "FORBIDDEN"
    assert replayed["data"] == {"payInvoice": None}
