"""Mutations end to end: purchases (idempotent, compensated), playlists and payments, over real sockets."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from tests.e2e.live import Live, run_live

PURCHASE = """
mutation ($customerId: ID!, $trackIds: [ID!]!, $key: String!) {
  purchaseTracks(input: {customerId: $customerId, trackIds: $trackIds, idempotencyKey: $key}) {
    invoice { id total customer { id } lines { unitPrice quantity track { id name } } }
    userErrors { field message code }
  }
}
"""

PAY = """
mutation ($invoiceId: ID!, $key: String!) {
  payInvoice(input: {invoiceId: $invoiceId, idempotencyKey: $key}) {
    payment { id status amount currency invoiceId invoice { id total } }
    userErrors { field code }
  }
}
"""


@pytest.fixture(scope="module")
async def live() -> AsyncIterator[Live]:
    """A BFF with its own demo services: these tests write invoices, playlists and charges."""
    async with run_live("mutations") as running:
        yield running


@pytest.fixture
async def clean(live: Live) -> AsyncIterator[Live]:
    """The live stack with request counters reset and no faults left behind by the test."""
    await live.stack.reset_counts()
    try:
        yield live
    finally:
        for url in live.stack.service_urls.values():
            await live.stack.http.delete(f"{url}/_faults")


async def purchase(live: Live, customer_id: str, track_ids: list[str], key: str) -> dict[str, Any]:
    """Run purchaseTracks and return the whole response body."""
    return await live.stack.post(PURCHASE, {"customerId": customer_id, "trackIds": track_ids, "key": key})


async def invoices_with_key(live: Live, customer_id: str, key: str) -> list[dict[str, Any]]:
    """The sales service's invoices made for one idempotency key (sent anonymously)."""
    found: list[dict[str, Any]] = await live.records(
        "sales", f"/invoices?purchaseKey=purchaseTracks:anonymous:{customer_id}:{key}"
    )
    return found


async def test_purchase_creates_invoice_and_lines_priced_from_the_catalog(clean: Live) -> None:
    """An invoice with one line per track, catalog prices and their sum as total, lands in sales."""
    key = uuid.uuid4().hex
    body = await purchase(clean, "3", ["1", "2819", "2820"], key)
    assert "errors" not in body, body
    payload = body["data"]["purchaseTracks"]
    assert payload["userErrors"] == []
    invoice = payload["invoice"]
    assert invoice["total"] == "4.97"
    assert invoice["customer"] == {"id": "3"}
    assert [(line["track"]["id"], line["unitPrice"], line["quantity"]) for line in invoice["lines"]] == [
        ("1", "0.99", 1),
        ("2819", "1.99", 1),
        ("2820", "1.99", 1),
    ]
    stored = await clean.records("sales", f"/invoices/{invoice['id']}")
    assert Decimal(str(stored["total"])) == Decimal("4.97")
    assert stored["customerId"] == 3
    assert stored["billingCountry"] == "Canada"
    lines = await clean.records("sales", f"/invoiceLines?invoiceId={invoice['id']}")
    assert sorted((line["trackId"], line["unitPrice"]) for line in lines) == [
        (1, 0.99),
        (2819, 1.99),
        (2820, 1.99),
    ]


async def test_replayed_key_returns_the_same_invoice_and_creates_nothing(clean: Live) -> None:
    """The same idempotency key again returns the first invoice and makes no write downstream."""
    key = uuid.uuid4().hex
    first = await purchase(clean, "4", ["10", "11"], key)
    await clean.stack.reset_counts()
    again = await purchase(clean, "4", ["10", "11"], key)
    assert again["data"]["purchaseTracks"] == first["data"]["purchaseTracks"]
    writes = {
        call: n for call, n in (await clean.stack.counts())["sales"].items() if not call.startswith("GET")
    }
    assert writes == {}
    assert len(await invoices_with_key(clean, "4", key)) == 1


async def test_concurrent_requests_with_one_key_make_one_invoice(clean: Live) -> None:
    """Two requests racing with one key: one invoice, and both answer with it."""
    key = uuid.uuid4().hex
    first, second = await asyncio.gather(
        purchase(clean, "8", ["20", "21"], key), purchase(clean, "8", ["20", "21"], key)
    )
    ids = {
        first["data"]["purchaseTracks"]["invoice"]["id"],
        second["data"]["purchaseTracks"]["invoice"]["id"],
    }
    assert len(ids) == 1
    assert len(await invoices_with_key(clean, "8", key)) == 1


async def test_key_reused_for_another_purchase_is_a_user_error(clean: Live) -> None:
    """A key used before with other tracks is refused with IDEMPOTENCY_KEY_REUSED; nothing is created."""
    key = uuid.uuid4().hex
    await purchase(clean, "9", ["30"], key)
    body = await purchase(clean, "9", ["31"], key)
    assert body["data"]["purchaseTracks"] == {
        "invoice": None,
        "userErrors": [
            {
                "field": ["input", "idempotencyKey"],
                "message": "this idempotency key was used for a different request",
                "code": "IDEMPOTENCY_KEY_REUSED",
            }
        ],
    }


async def test_failure_on_the_second_line_rolls_the_invoice_back(clean: Live) -> None:
    """The second line's POST fails: the invoice and first line are deleted and MUTATION_FAILED reported."""
    sales = clean.stack.service_urls["sales"]
    invoices_before = len(await clean.records("sales", "/invoices"))
    lines_before = len(await clean.records("sales", "/invoiceLines"))
    # POST /invoices and the first POST /invoiceLines pass; the next POST fails.
    faults = {"methods": ["POST"], "skip_first": 2, "fail_first": 1, "error_status": 500}
    (await clean.stack.http.put(f"{sales}/_faults", json=faults)).raise_for_status()
    key = uuid.uuid4().hex
    body = await purchase(clean, "10", ["40", "41", "42"], key)
    assert body["data"] == {"purchaseTracks": None}
    [error] = body["errors"]
    assert error["extensions"] == {
        "code": "MUTATION_FAILED",
        "cause": "DOWNSTREAM_ERROR",
        "service": "sales",
        "rolledBack": True,
    }
    assert "nothing was kept" in error["message"]
    counts = (await clean.stack.counts())["sales"]
    assert counts["POST /invoices"] == 1
    assert counts["POST /invoiceLines"] == 2
    assert sum(n for call, n in counts.items() if call.startswith("DELETE /invoices/")) == 1
    assert len(await clean.records("sales", "/invoices")) == invoices_before
    assert len(await clean.records("sales", "/invoiceLines")) == lines_before
    assert await invoices_with_key(clean, "10", key) == []
    # The key was released with the failure: the client's retry with it succeeds once the fault is gone.
    retry = await purchase(clean, "10", ["40", "41", "42"], key)
    assert retry["data"]["purchaseTracks"]["invoice"]["total"] == "2.97"


async def test_failure_creating_the_invoice_leaves_nothing(clean: Live) -> None:
    """POST /invoices fails: the error names the cause and no invoice exists for the key."""
    sales = clean.stack.service_urls["sales"]
    faults = {"methods": ["POST"], "fail_first": 1, "error_status": 503}
    (await clean.stack.http.put(f"{sales}/_faults", json=faults)).raise_for_status()
    key = uuid.uuid4().hex
    body = await purchase(clean, "11", ["50"], key)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "MUTATION_FAILED"
    assert error["extensions"]["cause"] == "DOWNSTREAM_UNAVAILABLE"
    assert error["extensions"]["rolledBack"] is True
    assert await invoices_with_key(clean, "11", key) == []


@pytest.mark.parametrize(
    ("customer_id", "track_ids", "key", "expected"),
    [
        ("99999", ["1"], "k-1", [(["input", "customerId"], "CUSTOMER_NOT_FOUND")]),
        ("1", ["1", "999999"], "k-2", [(["input", "trackIds", "1"], "TRACK_NOT_FOUND")]),
        ("1", [], "k-3", [(["input", "trackIds"], "NO_TRACKS")]),
        ("1", [str(i) for i in range(1, 52)], "k-4", [(["input", "trackIds"], "TOO_MANY_TRACKS")]),
        ("1; DROP", ["1"], "k-5", [(["input", "customerId"], "INVALID_ID")]),
        ("1", ["../1"], "k-6", [(["input", "trackIds", "0"], "INVALID_ID")]),
        ("1", ["7", "7"], "k-7", [(["input", "trackIds", "1"], "DUPLICATE_TRACK")]),
        ("1", ["1"], "", [(["input", "idempotencyKey"], "INVALID_IDEMPOTENCY_KEY")]),
        (
            "x y",
            [],
            "has space",
            [
                (["input", "customerId"], "INVALID_ID"),
                (["input", "idempotencyKey"], "INVALID_IDEMPOTENCY_KEY"),
                (["input", "trackIds"], "NO_TRACKS"),
            ],
        ),
    ],
)
async def test_bad_input_is_user_errors_and_writes_nothing(
    clean: Live, customer_id: str, track_ids: list[str], key: str, expected: list[tuple[list[str], str]]
) -> None:
    """Unknown or malformed ids, empty or oversized lists and bad keys are coded userErrors; no writes."""
    body = await purchase(clean, customer_id, track_ids, key)
    assert "errors" not in body, body
    payload = body["data"]["purchaseTracks"]
    assert payload["invoice"] is None
    assert [(error["field"], error["code"]) for error in payload["userErrors"]] == expected
    assert all(error["message"] for error in payload["userErrors"])
    sales_calls = (await clean.stack.counts())["sales"]
    assert not any(call.startswith(("POST", "DELETE", "PUT", "PATCH")) for call in sales_calls)


async def test_playlist_mutations(clean: Live) -> None:
    """Create a playlist, add a track (twice: user error), remove it (twice: user error)."""
    create = """mutation {
      createPlaylist(input: {name: "  Road trip  "}) { playlist { id name } userErrors { code } }
    }"""
    created = await clean.mutate(create)
    playlist = created["createPlaylist"]["playlist"]
    assert playlist["name"] == "Road trip"
    edit = """mutation ($p: ID!, $t: ID!) {
      %s(input: {playlistId: $p, trackId: $t}) { playlist { tracks { id } } userErrors { field code } }
    }"""
    variables = {"p": playlist["id"], "t": "15"}
    added = (await clean.mutate(edit % "addTrackToPlaylist", variables))["addTrackToPlaylist"]
    assert added == {"playlist": {"tracks": [{"id": "15"}]}, "userErrors": []}
    again = (await clean.mutate(edit % "addTrackToPlaylist", variables))["addTrackToPlaylist"]
    assert again == {
        "playlist": None,
        "userErrors": [{"field": ["input", "trackId"], "code": "TRACK_ALREADY_ON_PLAYLIST"}],
    }
    removed = (await clean.mutate(edit % "removeTrackFromPlaylist", variables))["removeTrackFromPlaylist"]
    assert removed == {"playlist": {"tracks": []}, "userErrors": []}
    gone = (await clean.mutate(edit % "removeTrackFromPlaylist", variables))["removeTrackFromPlaylist"]
    assert gone["userErrors"] == [{"field": ["input", "trackId"], "code": "TRACK_NOT_ON_PLAYLIST"}]
    assert await clean.records("playlists", f"/playlistTracks?playlistId={playlist['id']}") == []


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        ('createPlaylist(input: {name: "   "})', [(["input", "name"], "INVALID_NAME")]),
        (
            'addTrackToPlaylist(input: {playlistId: "9999", trackId: "99999"})',
            [(["input", "playlistId"], "PLAYLIST_NOT_FOUND"), (["input", "trackId"], "TRACK_NOT_FOUND")],
        ),
        (
            'removeTrackFromPlaylist(input: {playlistId: "1", trackId: "a/b"})',
            [(["input", "trackId"], "INVALID_ID")],
        ),
    ],
)
async def test_playlist_user_errors(
    clean: Live, mutation: str, expected: list[tuple[list[str], str]]
) -> None:
    """Playlist mutations report bad names, unknown and malformed ids as userErrors with codes."""
    data = await clean.mutate(
        f"mutation {{ result: {mutation} {{ playlist {{ id }} userErrors {{ field code }} }} }}"
    )
    assert data["result"]["playlist"] is None
    assert [(error["field"], error["code"]) for error in data["result"]["userErrors"]] == expected


async def test_pay_invoice_returns_a_pending_charge_once_per_key(clean: Live) -> None:
    """payInvoice asks the payments service for a PENDING charge; the same key returns the same charge."""
    clean.payments.configure(settle_delay_ms=60_000.0)  # keep it pending for this test
    try:
        key = uuid.uuid4().hex
        first = await clean.mutate(PAY, {"invoiceId": "2", "key": key})
        payment = first["payInvoice"]["payment"]
        assert first["payInvoice"]["userErrors"] == []
        assert payment["status"] == "PENDING"
        assert (payment["amount"], payment["currency"], payment["invoiceId"]) == ("3.96", "USD", "2")
        assert payment["invoice"] == {"id": "2", "total": "3.96"}
        again = await clean.mutate(PAY, {"invoiceId": "2", "key": key})
        assert again["payInvoice"]["payment"]["id"] == payment["id"]
        other_key = await clean.mutate(PAY, {"invoiceId": "2", "key": uuid.uuid4().hex})
        assert other_key["payInvoice"] == {
            "payment": None,
            "userErrors": [{"field": ["input", "invoiceId"], "code": "INVOICE_ALREADY_PAID"}],
        }
        charges = await clean.records("payments", "/charges?invoiceId=2")
        assert [charge["status"] for charge in charges] == ["PENDING"]
    finally:
        clean.payments.configure(settle_delay_ms=50.0)


@pytest.mark.parametrize(
    ("invoice_id", "key", "expected"),
    [
        ("99999", "k", [(["input", "invoiceId"], "INVOICE_NOT_FOUND")]),
        ("1 2", "k", [(["input", "invoiceId"], "INVALID_ID")]),
        ("1", "x" * 256, [(["input", "idempotencyKey"], "INVALID_IDEMPOTENCY_KEY")]),
    ],
)
async def test_pay_invoice_user_errors(
    clean: Live, invoice_id: str, key: str, expected: list[tuple[list[str], str]]
) -> None:
    """payInvoice reports unknown invoices and malformed input as userErrors; nothing is charged."""
    data = await clean.mutate(PAY, {"invoiceId": invoice_id, "key": key})
    assert data["payInvoice"]["payment"] is None
    assert [(error["field"], error["code"]) for error in data["payInvoice"]["userErrors"]] == expected
    assert "POST /charges" not in (await clean.stack.counts())["payments"]
