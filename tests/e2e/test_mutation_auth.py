"""Mutations follow the same access rule as queries: a customer changes only their own data."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.e2e.live import Live, run_live
from tests.support.tokens import SECRET, customer, employee

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
