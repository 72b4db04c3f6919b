"""Subscriptions and who is asking, over real sockets with the gql client on both WebSocket protocols.

Credentials in ``connection_init`` (or on the HTTP upgrade) set the connection's principal; events
reach a subscriber only when the principal may see them, as with queries over HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from aiohttp import web
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError, TransportServerError
from gql.transport.websockets import WebsocketsTransport

from bff.events import EVENT_BUS, Event
from bff_chinook.resolvers.topics import CHARGE_SUCCEEDED, INVOICE_CREATED, PLAYLIST_UPDATED
from tests.e2e.live import Live, run_live, take, wait_until
from tests.e2e.stack import run_bff
from tests.support.chinook import customer_record
from tests.support.tokens import SECRET, customer, employee, token

API_KEY = "subscription-auth-key-of-customer-21"
"""An API key of customer 21 (the BFF holds only its digest)."""
ALICE, BOB = "21", "22"
"""Two customers of the Chinook data set."""

TRANSPORT_WS = WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL
LEGACY_WS = WebsocketsTransport.APOLLO_SUBPROTOCOL
PROTOCOLS = [TRANSPORT_WS, LEGACY_WS]
"""graphql-transport-ws (the current protocol) and graphql-ws (the legacy one, Apollo's)."""

PURCHASE = """
mutation ($customerId: ID!, $key: String!) {
  purchaseTracks(input: {customerId: $customerId, trackIds: ["1"], idempotencyKey: $key}) {
    invoice { id }
  }
}
"""
INVOICES = GraphQLRequest("subscription { invoiceCreated { id customer { id email } } }")
PAYMENTS = GraphQLRequest("subscription { paymentUpdated { id invoiceId status } }")


@pytest.fixture(scope="module")
async def live() -> AsyncIterator[Live]:
    """A BFF that requires a principal for customer data, with HS256 tokens and one API key."""
    api_keys = {hashlib.sha256(API_KEY.encode()).hexdigest(): f"customer:{ALICE}"}
    async with run_live(
        "subscription-auth",
        BFF_JWT_HS256_SECRET=SECRET,
        BFF_AUTH_REQUIRED="true",
        BFF_API_KEYS=json.dumps(api_keys),
        BFF_AUTH_FAILURE_LIMIT="1000/minute",  # these tests fail to authenticate on purpose
    ) as running:
        yield running


@pytest.fixture(autouse=True)
async def no_subscriber_left(live: Live) -> AsyncIterator[None]:
    """After each test, every subscription it started has ended on the server (none leaks)."""
    yield
    await wait_until(lambda: live.bus.subscriber_count() == 0)


EMPLOYEE = employee()


def gql_client(
    live: Live, protocol: str, payload: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> Client:
    """The gql client over websockets, sending ``payload`` in connection_init and ``headers`` on upgrade."""
    transport = WebsocketsTransport(
        url=live.ws_url, subprotocols=[protocol], init_payload=payload or {}, headers=headers, close_timeout=2
    )
    return Client(transport=transport, fetch_schema_from_transport=False)


async def purchase(live: Live, customer_id: str) -> str:
    """Buy track 1 for a customer through the BFF's mutation; returns the new invoice's id."""
    data = await live.mutate(
        PURCHASE, {"customerId": customer_id, "key": uuid.uuid4().hex}, authorization=EMPLOYEE
    )
    invoice_id: str = data["purchaseTracks"]["invoice"]["id"]
    return invoice_id


async def refused_code(live: Live, protocol: str, request: GraphQLRequest, payload: dict[str, Any]) -> str:
    """The ``extensions.code`` of the error a subscription fails with at once."""
    async with gql_client(live, protocol, payload) as session:
        with pytest.raises(TransportQueryError) as caught:
            await take(session.subscribe(request), 1)
    assert caught.value.errors is not None
    code: str = caught.value.errors[0]["extensions"]["code"]
    return code


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(lambda: {"Authorization": customer(ALICE)}, id="Authorization"),
        pytest.param(lambda: {"authorization": customer(ALICE)}, id="authorization"),
        pytest.param(lambda: {"headers": {"Authorization": customer(ALICE)}}, id="headers"),
        pytest.param(lambda: {"X-Api-Key": API_KEY}, id="api-key"),
    ],
)
async def test_credentials_in_connection_init_are_accepted(live: Live, protocol: str, payload: Any) -> None:
    """A token or API key in connection_init makes the connection customer 21's: own invoice, own email."""
    async with gql_client(live, protocol, payload()) as session:
        before = live.bus.subscriber_count(INVOICE_CREATED)
        events = asyncio.ensure_future(take(session.subscribe(INVOICES), 1))
        await live.wait_for_subscribers(INVOICE_CREATED, before + 1)
        invoice_id = await purchase(live, ALICE)
        [result] = await events
    assert result["invoiceCreated"]["id"] == invoice_id
    assert result["invoiceCreated"]["customer"]["id"] == ALICE
    assert result["invoiceCreated"]["customer"]["email"]  # a protected field: the principal is known


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"Authorization": "Bearer not-a-token"}, id="garbage"),
        pytest.param(
            {"Authorization": f"Bearer {token(sub='x', exp=int(time.time()) - 3600)}"}, id="expired"
        ),
        pytest.param({"headers": {"authorization": "Basic dXNlcjpwYXNz"}}, id="not-bearer"),
        pytest.param({"X-Api-Key": "not-a-key"}, id="api-key"),
        pytest.param({"Authorization": 42}, id="not-a-string"),
    ],
)
async def test_bad_credentials_in_connection_init_are_refused(
    live: Live, protocol: str, payload: dict[str, Any]
) -> None:
    """Bad credentials close graphql-transport-ws with 4403 and get connection_error on graphql-ws."""
    with pytest.raises((TransportConnectionFailed, TransportServerError)) as caught:
        async with gql_client(live, protocol, payload):
            pass
    if protocol == TRANSPORT_WS:
        closed = caught.value.__cause__
        assert isinstance(closed, websockets.ConnectionClosed)
        assert closed.rcvd is not None
        assert (closed.rcvd.code, closed.rcvd.reason) == (4403, "Forbidden")
    else:
        assert isinstance(caught.value, TransportServerError)
        assert "UNAUTHENTICATED" in str(caught.value)
    async with gql_client(live, protocol, {"Authorization": EMPLOYEE}):
        pass  # the server keeps accepting good connections


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_upgrade_authorization_header_still_works(live: Live, protocol: str) -> None:
    """A bearer token on the HTTP upgrade, with an empty connection_init, authenticates the connection."""
    async with gql_client(live, protocol, headers={"Authorization": customer(BOB)}) as session:
        before = live.bus.subscriber_count(INVOICE_CREATED)
        events = asyncio.ensure_future(take(session.subscribe(INVOICES), 1))
        await live.wait_for_subscribers(INVOICE_CREATED, before + 1)
        invoice_id = await purchase(live, BOB)
        [result] = await events
    assert result["invoiceCreated"]["id"] == invoice_id


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_connection_init_credentials_replace_the_upgrades(live: Live, protocol: str) -> None:
    """An employee token in connection_init outranks a customer token on the upgrade: all invoices arrive."""
    async with gql_client(
        live, protocol, {"Authorization": EMPLOYEE}, headers={"Authorization": customer(ALICE)}
    ) as session:
        before = live.bus.subscriber_count(INVOICE_CREATED)
        events = asyncio.ensure_future(take(session.subscribe(INVOICES), 1))
        await live.wait_for_subscribers(INVOICE_CREATED, before + 1)
        invoice_id = await purchase(live, BOB)
        [result] = await events
    assert result["invoiceCreated"]["id"] == invoice_id


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_customers_receive_only_their_own_invoices(live: Live, protocol: str) -> None:
    """Customer 21 does not receive customer 22's new invoice; an employee receives both."""
    async with (
        gql_client(live, protocol, {"Authorization": customer(ALICE)}) as alice,
        gql_client(live, protocol, {"Authorization": EMPLOYEE}) as staff,
    ):
        before = live.bus.subscriber_count(INVOICE_CREATED)
        alice_events = asyncio.ensure_future(take(alice.subscribe(INVOICES), 1))
        staff_events = asyncio.ensure_future(take(staff.subscribe(INVOICES), 2))
        await live.wait_for_subscribers(INVOICE_CREATED, before + 2)
        bobs = await purchase(live, BOB)
        alices = await purchase(live, ALICE)
        [alice_result] = await alice_events
        staff_results = await staff_events
    assert alice_result["invoiceCreated"]["id"] == alices  # Bob's came first and was not delivered
    assert [result["invoiceCreated"]["id"] for result in staff_results] == [bobs, alices]
    assert [result["invoiceCreated"]["customer"]["id"] for result in staff_results] == [BOB, ALICE]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_customers_receive_only_their_own_payments(live: Live, protocol: str) -> None:
    """paymentUpdated without an argument brings a customer only their own invoices' payments."""
    bobs, alices = await purchase(live, BOB), await purchase(live, ALICE)
    async with (
        gql_client(live, protocol, {"X-Api-Key": API_KEY}) as alice,
        gql_client(live, protocol, {"Authorization": EMPLOYEE}) as staff,
    ):
        before = live.bus.subscriber_count(CHARGE_SUCCEEDED)
        alice_events = asyncio.ensure_future(take(alice.subscribe(PAYMENTS), 1))
        staff_events = asyncio.ensure_future(take(staff.subscribe(PAYMENTS), 2))
        await live.wait_for_subscribers(CHARGE_SUCCEEDED, before + 2)
        for charge_id, invoice_id in ((901, bobs), (902, alices)):
            charge = {"id": charge_id, "invoiceId": int(invoice_id), "amount": 0.99, "status": "SUCCEEDED"}
            await live.bus.publish(Event(CHARGE_SUCCEEDED, {"charge": charge}))
        [alice_result] = await alice_events
        staff_results = await staff_events
    assert alice_result == {"paymentUpdated": {"id": "902", "invoiceId": alices, "status": "SUCCEEDED"}}
    assert [result["paymentUpdated"]["invoiceId"] for result in staff_results] == [bobs, alices]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_asking_for_another_customers_events_is_forbidden(live: Live, protocol: str) -> None:
    """A customer naming another customer, or their invoice, fails with FORBIDDEN when subscribing."""
    bobs = await purchase(live, BOB)
    alice = {"Authorization": customer(ALICE)}
    other_customer = GraphQLRequest(f'subscription {{ invoiceCreated(customerId: "{BOB}") {{ id }} }}')
    other_invoice = GraphQLRequest(f'subscription {{ paymentUpdated(invoiceId: "{bobs}") {{ id }} }}')
    assert await refused_code(live, protocol, other_customer, alice) == "FORBIDDEN"
    assert await refused_code(live, protocol, other_invoice, alice) == "FORBIDDEN"
    assert live.bus.subscriber_count() == 0  # refused before listening
    own = GraphQLRequest(f'subscription {{ invoiceCreated(customerId: "{ALICE}") {{ id }} }}')
    async with gql_client(live, protocol, alice) as session:
        events = asyncio.ensure_future(take(session.subscribe(own), 1))
        await live.wait_for_subscribers(INVOICE_CREATED, 1)
        invoice_id = await purchase(live, ALICE)
        assert await events == [{"invoiceCreated": {"id": invoice_id}}]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_anonymous_subscribers_where_a_principal_is_required(live: Live, protocol: str) -> None:
    """Anonymous (BFF_AUTH_REQUIRED on): invoices and payments are UNAUTHENTICATED; playlists are public."""
    assert await refused_code(live, protocol, INVOICES, {}) == "UNAUTHENTICATED"
    assert await refused_code(live, protocol, PAYMENTS, {}) == "UNAUTHENTICATED"
    created = await live.mutate(
        'mutation { createPlaylist(input: {name: "Public"}) { playlist { id } } }', authorization=EMPLOYEE
    )
    playlist_id = created["createPlaylist"]["playlist"]["id"]
    add = (
        'mutation ($p: ID!) { addTrackToPlaylist(input: {playlistId: $p, trackId: "1"}) { playlist { id } } }'
    )
    request = GraphQLRequest(
        "subscription ($id: ID!) { playlistUpdated(playlistId: $id) { change } }",
        variable_values={"id": playlist_id},
    )
    async with gql_client(live, protocol) as session:
        before = live.bus.subscriber_count(PLAYLIST_UPDATED)
        events = asyncio.ensure_future(take(session.subscribe(request), 1))
        await live.wait_for_subscribers(PLAYLIST_UPDATED, before + 1)
        await live.mutate(add, {"p": playlist_id}, authorization=EMPLOYEE)
        assert await events == [{"playlistUpdated": {"change": "TRACK_ADDED"}}]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_connection_init_authorization_is_forwarded_downstream(protocol: str) -> None:
    """Events of the connection are resolved downstream with the connection_init token, not the upgrade's."""
    seen: list[str | None] = []

    async def customers(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        record = customer_record(id=1, firstName="Ana", lastName="B", email="a@b.c")
        return web.json_response([record], headers={"X-Total-Count": "1"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", customers)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
        urls = {"customers": f"http://127.0.0.1:{port}"}
        async with run_bff("forward-ws", urls, BFF_JWT_HS256_SECRET=SECRET) as stack:
            assert stack.app is not None
            bus = stack.app[EVENT_BUS]
            transport = WebsocketsTransport(
                url=stack.graphql_url.replace("http://", "ws://", 1),
                subprotocols=[protocol],
                init_payload={"Authorization": EMPLOYEE},
                headers={"Authorization": customer(ALICE)},
                close_timeout=2,
            )
            request = GraphQLRequest("subscription { invoiceCreated { customer { firstName email } } }")
            async with Client(transport=transport, fetch_schema_from_transport=False) as session:
                events = asyncio.ensure_future(take(session.subscribe(request), 1))
                await wait_until(lambda: bus.subscriber_count(INVOICE_CREATED) == 1)
                invoice = {"id": 1, "customerId": 1, "invoiceDate": "2026-11-01T00:00:00Z", "total": 0.99}
                await bus.publish(Event(INVOICE_CREATED, {"invoice": invoice}))
                [result] = await events
        assert result == {"invoiceCreated": {"customer": {"firstName": "Ana", "email": "a@b.c"}}}
        assert seen == [EMPLOYEE]
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_failed_connection_init_credentials_are_throttled_per_client_ip(
    demo_services: dict[str, str], protocol: str
) -> None:
    """After BFF_AUTH_FAILURE_LIMIT failures from one IP, connection_init with credentials is refused
    like bad credentials (4403, or connection_error with RATE_LIMITED) without checking them."""
    api_keys = {hashlib.sha256(API_KEY.encode()).hexdigest(): f"customer:{ALICE}"}
    env = {"BFF_API_KEYS": json.dumps(api_keys), "BFF_AUTH_FAILURE_LIMIT": "2/minute"}
    async with run_bff("ws-auth-failures", demo_services, **env) as stack:
        url = stack.graphql_url.replace("http://", "ws://", 1)

        def client(payload: dict[str, Any]) -> Client:
            transport = WebsocketsTransport(
                url=url, subprotocols=[protocol], init_payload=payload, close_timeout=2
            )
            return Client(transport=transport, fetch_schema_from_transport=False)

        async def refusal(payload: dict[str, Any]) -> str:
            with pytest.raises((TransportConnectionFailed, TransportServerError)) as caught:
                async with client(payload):
                    pass
            if protocol == TRANSPORT_WS:
                closed = caught.value.__cause__
                assert isinstance(closed, websockets.ConnectionClosed)
                assert closed.rcvd is not None
                assert (closed.rcvd.code, closed.rcvd.reason) == (4403, "Forbidden")
                return "4403"
            return str(caught.value)

        async with client({"X-Api-Key": API_KEY}):
            pass  # good credentials count no failure
        for _ in range(2):
            assert "RATE_LIMITED" not in await refusal({"X-Api-Key": "a-guess"})
        refused = await refusal({"X-Api-Key": API_KEY})  # the right key, no longer checked
        if protocol == LEGACY_WS:
            assert "RATE_LIMITED" in refused
        async with client({}):
            pass  # anonymous connections still open
