"""Webhook ingress over real sockets: signatures, rotation, replays, malformed bodies, exactly-once."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport
from standardwebhooks.webhooks import Webhook

from bff.events import Event
from bff_chinook.demo.payments import signed_headers
from bff_chinook.resolvers.topics import CHARGE_FAILED, CHARGE_SUCCEEDED
from tests.e2e.live import OLD_SECRET, SECRET, Live, run_live, wait_until
from tests.e2e.stack import run_bff

PAY = """mutation ($id: ID!, $key: String!) {
  payInvoice(input: {invoiceId: $id, idempotencyKey: $key}) { payment { id status } }
}"""
WRONG_SECRET = "whsec_" + base64.b64encode(b"a secret the BFF does not know!!").decode()


@pytest.fixture(scope="module")
async def live() -> AsyncIterator[Live]:
    """A BFF with its own demo services and webhook secrets (current and previous)."""
    async with run_live("webhooks") as running:
        yield running


def charge_body(*, charge_id: int = 7, kind: str = "charge.succeeded") -> bytes:
    """A webhook body as the payments service sends it."""
    status = "SUCCEEDED" if kind == "charge.succeeded" else "FAILED"
    charge = {"id": charge_id, "invoiceId": 3, "amount": 5.94, "currency": "USD", "status": status}
    return json.dumps({"type": kind, "timestamp": "2026-11-01T00:00:00Z", "data": charge}).encode()


def signed(
    body: bytes, *, secret: str = SECRET, msg_id: str | None = None, at: float | None = None
) -> dict[str, str]:
    """Standard Webhooks headers for ``body``, signed with ``secret`` at time ``at`` (default: now)."""
    moment = datetime.fromtimestamp(time.time() if at is None else at, tz=UTC)
    return signed_headers(Webhook(secret), msg_id or f"msg_{uuid.uuid4().hex}", body.decode(), moment)


async def deliver(live: Live, body: bytes, headers: Mapping[str, str | bytes]) -> tuple[int, dict[str, Any]]:
    """POST a delivery to the BFF's webhook endpoint; returns the status and the JSON answer."""
    response = await live.stack.http.post(live.webhook_url, content=body, headers=headers)
    assert response.headers["content-type"].startswith("application/json")
    answer: dict[str, Any] = response.json()
    return response.status_code, answer


async def events_of(live: Live, topic: str, action: Any) -> list[Event]:
    """The events ``topic`` gets while ``action`` runs and its webhooks are processed."""
    received: list[Event] = []
    async with live.bus.subscribe(topic) as events:

        async def collect() -> None:
            async for event in events:
                received.append(event)

        collecting = asyncio.ensure_future(collect())
        await action()
        await asyncio.sleep(0.1)  # the worker publishes after the 2xx
        collecting.cancel()
        await asyncio.gather(collecting, return_exceptions=True)
    return received


async def test_valid_webhook_is_accepted_and_published(live: Live) -> None:
    """A correctly signed delivery gets 202 and becomes one charge.succeeded event."""
    body = charge_body(charge_id=101)
    headers = signed(body)

    async def send() -> None:
        assert await deliver(live, body, headers) == (202, {"status": "accepted"})

    [event] = await events_of(live, CHARGE_SUCCEEDED, send)
    assert event.id == headers["webhook-id"]
    assert event.data["charge"]["id"] == 101


async def test_rotated_secret_is_still_accepted(live: Live) -> None:
    """A delivery signed with the previous secret (still configured) is accepted during rotation."""
    body = charge_body(charge_id=102)
    assert await deliver(live, body, signed(body, secret=OLD_SECRET)) == (202, {"status": "accepted"})


async def test_one_good_signature_among_several_is_enough(live: Live) -> None:
    """A sender rotating its secret signs twice; one matching signature in the list is accepted."""
    body = charge_body(charge_id=103)
    headers = signed(body)
    wrong = signed(body, secret=WRONG_SECRET, msg_id=headers["webhook-id"])
    headers["webhook-signature"] = f"{wrong['webhook-signature']} {headers['webhook-signature']}"
    assert (await deliver(live, body, headers))[0] == 202


async def test_duplicate_webhook_id_is_processed_once(live: Live) -> None:
    """The same webhook-id delivered three times: 202 once, 200 duplicate twice, one event."""
    body = charge_body(charge_id=104, kind="charge.failed")
    msg_id = f"msg_{uuid.uuid4().hex}"
    statuses: list[tuple[int, dict[str, Any]]] = []

    async def send_three_times() -> None:
        for _ in range(3):
            statuses.append(await deliver(live, body, signed(body, msg_id=msg_id)))

    events = await events_of(live, CHARGE_FAILED, send_three_times)
    assert statuses == [
        (202, {"status": "accepted"}),
        (200, {"status": "duplicate"}),
        (200, {"status": "duplicate"}),
    ]
    assert [event.id for event in events] == [msg_id]


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("tampered body", 401, "WEBHOOK_SIGNATURE_INVALID"),
        ("wrong secret", 401, "WEBHOOK_SIGNATURE_INVALID"),
        ("old timestamp", 401, "WEBHOOK_TIMESTAMP_OUT_OF_RANGE"),
        ("future timestamp", 401, "WEBHOOK_TIMESTAMP_OUT_OF_RANGE"),
        ("garbage timestamp", 400, "WEBHOOK_TIMESTAMP_INVALID"),
        ("signature without version", 401, "WEBHOOK_SIGNATURE_INVALID"),
        ("no webhook-id", 401, "WEBHOOK_SIGNATURE_MISSING"),
        ("no webhook-timestamp", 401, "WEBHOOK_SIGNATURE_MISSING"),
        ("no webhook-signature", 401, "WEBHOOK_SIGNATURE_MISSING"),
        ("tampered and not JSON", 401, "WEBHOOK_SIGNATURE_INVALID"),
        ("not UTF-8", 401, "WEBHOOK_SIGNATURE_INVALID"),
        ("malformed JSON", 400, "WEBHOOK_MALFORMED"),
        ("JSON but not a charge", 400, "WEBHOOK_MALFORMED"),
        ("charge without status", 400, "WEBHOOK_MALFORMED"),
    ],
)
async def test_bad_deliveries_are_refused_with_a_json_error(
    live: Live, case: str, status: int, code: str
) -> None:
    """Each bad delivery gets its status and code, nothing is published, and its id stays unused."""
    body = charge_body(charge_id=105)
    headers = signed(body)
    if case == "tampered body":
        body = body.replace(b"5.94", b"0.01")
    elif case == "wrong secret":
        headers = signed(body, secret=WRONG_SECRET)
    elif case == "old timestamp":
        headers = signed(body, at=time.time() - 301)
    elif case == "future timestamp":
        headers = signed(body, at=time.time() + 301)
    elif case == "garbage timestamp":
        headers["webhook-timestamp"] = "yesterday"
    elif case == "signature without version":
        headers["webhook-signature"] = headers["webhook-signature"].split(",", 1)[1]
    elif case.startswith("no "):
        del headers[case.removeprefix("no ")]
    elif case == "tampered and not JSON":
        body = b"{not json"
    elif case == "not UTF-8":
        body = b"\xff\xfe" + body
    elif case == "malformed JSON":
        body = b'{"type": "charge.succeeded", "data": '
        headers = signed(body)
    elif case == "JSON but not a charge":
        body = json.dumps(["charge.succeeded"]).encode()
        headers = signed(body)
    elif case == "charge without status":
        body = json.dumps({"type": "charge.succeeded", "data": {"id": 1, "invoiceId": 2}}).encode()
        headers = signed(body)

    async def send() -> None:
        answer = await deliver(live, body, headers)
        assert answer[0] == status
        assert answer[1]["error"]["code"] == code
        assert answer[1]["error"]["message"]

    assert await events_of(live, CHARGE_SUCCEEDED, send) == []
    if "webhook-id" in headers:  # a refused delivery does not use up its id
        good = charge_body(charge_id=106)
        assert (await deliver(live, good, signed(good, msg_id=headers["webhook-id"])))[0] == 202


async def test_webhook_id_reused_with_another_body(live: Live) -> None:
    """A webhook-id seen before with a different body is refused with 409."""
    msg_id = f"msg_{uuid.uuid4().hex}"
    first, second = charge_body(charge_id=107), charge_body(charge_id=108)
    assert (await deliver(live, first, signed(first, msg_id=msg_id)))[0] == 202
    status, answer = await deliver(live, second, signed(second, msg_id=msg_id))
    assert (status, answer["error"]["code"]) == (409, "WEBHOOK_ID_REUSED")


@pytest.mark.parametrize(
    ("header", "value", "code"),
    [
        ("webhook-timestamp", "\u00b2".encode(), "WEBHOOK_TIMESTAMP_INVALID"),  # isdigit(), yet not int()
        ("webhook-timestamp", b"9" * 400, "WEBHOOK_TIMESTAMP_INVALID"),  # an int too large for a float
        ("webhook-timestamp", "\u0661\u0667".encode(), "WEBHOOK_TIMESTAMP_INVALID"),  # Arabic-Indic digits
        ("webhook-timestamp", b"-1", "WEBHOOK_TIMESTAMP_INVALID"),
        ("webhook-timestamp", b"1.7e9", "WEBHOOK_TIMESTAMP_INVALID"),
        ("webhook-id", b"m" * 257, "WEBHOOK_ID_INVALID"),
        ("webhook-id", b"m" * 8000, "WEBHOOK_ID_INVALID"),
        ("webhook-id", "msg_\u00e9".encode(), "WEBHOOK_ID_INVALID"),
        ("webhook-id", b"msg 1", "WEBHOOK_ID_INVALID"),
    ],
    ids=["superscript", "400-nines", "arabic", "negative", "float", "257", "8000", "non-ascii", "space"],
)
async def test_malformed_headers_are_400_before_the_signature_is_checked(
    live: Live, header: str, value: bytes, code: str
) -> None:
    """A timestamp that is not ASCII digits, or an id that is not 1-256 printable ASCII characters, is
    400 with its code whether or not the signature matches, and the endpoint keeps serving."""
    body = charge_body(charge_id=109)
    at = time.time()
    msg_id = value.decode() if header == "webhook-id" else f"msg_{uuid.uuid4().hex}"
    headers: dict[str, str | bytes] = {**signed(body, msg_id=msg_id, at=at), header: value}
    status, answer = await deliver(live, body, headers)
    assert (status, answer["error"]["code"]) == (400, code)
    assert header in answer["error"]["message"]
    good = charge_body(charge_id=110)
    assert (await deliver(live, good, signed(good)))[0] == 202


@pytest.mark.parametrize(
    "signature",
    [b"v1,", b",", b"v1,a,b", "v1,\u00e9".encode(), b"v1," + b"A" * 6000, b" ".join([b"v1,x"] * 1500)],
    ids=["empty", "comma", "two-commas", "non-ascii", "long", "many"],
)
async def test_garbage_signatures_are_401(live: Live, signature: bytes) -> None:
    """A webhook-signature that is not a list of ``v1,<base64>`` is refused as not matching, never 500."""
    body = charge_body(charge_id=111)
    headers: dict[str, str | bytes] = {**signed(body), "webhook-signature": signature}
    status, answer = await deliver(live, body, headers)
    assert (status, answer["error"]["code"]) == (401, "WEBHOOK_SIGNATURE_INVALID")


async def test_header_over_the_server_limit_is_400(live: Live) -> None:
    """A webhook-id longer than aiohttp's 8190-byte header limit is refused with 400 by the HTTP parser."""
    body = charge_body(charge_id=112)
    headers = signed(body, msg_id="m" * 10_000)
    response = await live.stack.http.post(live.webhook_url, content=body, headers=headers)
    assert response.status_code == 400
    good = charge_body(charge_id=113)
    assert (await deliver(live, good, signed(good)))[0] == 202


async def test_oversized_body_is_refused(live: Live) -> None:
    """A body over BFF_WEBHOOK_MAX_BODY_BYTES (64 KiB) gets 413 before any verification."""
    body = b'{"type": "charge.succeeded", "pad": "' + b"x" * 70_000 + b'"}'
    status, answer = await deliver(live, body, signed(body))
    assert (status, answer["error"]["code"]) == (413, "WEBHOOK_TOO_LARGE")


async def test_without_a_secret_the_endpoint_is_unavailable(demo_services: dict[str, str]) -> None:
    """With no BFF_WEBHOOK_SECRETS the endpoint answers 503 and never accepts a delivery."""
    async with run_bff("no-secret", demo_services) as stack:
        url = stack.graphql_url.replace("/graphql", "/webhooks/payments")
        body = charge_body()
        response = await stack.http.post(url, content=body, headers=signed(body))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "WEBHOOKS_NOT_CONFIGURED"


async def subscribe_payments(live: Live, invoice_id: str) -> AsyncGenerator[dict[str, Any], None]:
    """paymentUpdated(invoiceId) over graphql-transport-ws with the gql client, results as they come."""
    protocols = [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL]
    transport = WebsocketsTransport(url=live.ws_url, subprotocols=protocols)
    request = GraphQLRequest(
        "subscription ($id: ID) { paymentUpdated(invoiceId: $id) "
        "{ id status failureReason invoice { id } } }",
        variable_values={"id": invoice_id},
    )
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        async for result in session.subscribe(request):
            yield result["paymentUpdated"]


async def pay_and_watch(live: Live, invoice_id: str, *, settled: int) -> list[dict[str, Any]]:
    """Subscribe to an invoice's payments, pay it, and collect updates until ``settled`` webhooks were
    delivered with 2xx and a moment has passed for any (wrong) extra event to arrive."""
    updates: list[dict[str, Any]] = []

    async def watch() -> None:
        async for update in subscribe_payments(live, invoice_id):
            updates.append(update)

    before = live.bus.subscriber_count(CHARGE_SUCCEEDED)
    watching = asyncio.ensure_future(watch())
    try:
        await live.wait_for_subscribers(CHARGE_SUCCEEDED, before + 1)
        data = await live.mutate(PAY, {"id": invoice_id, "key": uuid.uuid4().hex})
        assert data["payInvoice"]["payment"]["status"] == "PENDING"
        charge_id = data["payInvoice"]["payment"]["id"]
        prefix = f"msg_{charge_id}_"
        await wait_until(
            lambda: (
                sum(
                    1
                    for d in live.payments.deliveries
                    if d.webhook_id.startswith(prefix) and d.status in (200, 202)
                )
                >= settled
            )
        )
        await asyncio.sleep(0.3)
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
    return updates


async def test_payment_succeeds_once_though_the_webhook_came_three_times(live: Live) -> None:
    """paymentUpdated sees PENDING then SUCCEEDED exactly once while the webhook is delivered 3 times."""
    live.payments.configure(copies=3)
    try:
        updates = await pay_and_watch(live, "5", settled=3)
    finally:
        live.payments.configure(copies=1)
    assert [update["status"] for update in updates] == ["PENDING", "SUCCEEDED"]
    assert updates[1]["invoice"] == {"id": "5"}
    assert updates[0]["id"] == updates[1]["id"]
    statuses = [
        d.status for d in live.payments.deliveries if d.webhook_id == f"msg_{updates[1]['id']}_succeeded"
    ]
    assert statuses == [202, 200, 200]


async def test_declined_payment_is_reported_failed(live: Live) -> None:
    """An invoice of 20.00 or more is declined: paymentUpdated says FAILED with the reason."""
    updates = await pay_and_watch(live, "96", settled=1)  # invoice 96 totals 21.86
    assert [(u["status"], u["failureReason"]) for u in updates] == [
        ("PENDING", None),
        ("FAILED", "card_declined"),
    ]


async def test_payments_service_retries_until_accepted(live: Live) -> None:
    """Deliveries the BFF refuses (unknown secret) are retried with backoff, then given up."""
    live.payments.configure(webhook_secret=WRONG_SECRET, max_attempts=3, retry_initial_ms=10.0)
    try:
        charge_id = (await live.mutate(PAY, {"id": "6", "key": "retry-test"}))["payInvoice"]["payment"]["id"]
        webhook_id = f"msg_{charge_id}_succeeded"
        await wait_until(lambda: len(live.payments.webhooks_to(webhook_id)) >= 3)
    finally:
        live.payments.configure(webhook_secret=SECRET, max_attempts=10, retry_initial_ms=20.0)
    assert [(d.attempt, d.status) for d in live.payments.webhooks_to(webhook_id)] == [
        (1, 401),
        (2, 401),
        (3, 401),
    ]
