"""Provider side: the pacts in ``contracts/`` verified against the services the BFF calls.

Every pact is verified against the demo services (reads and writes; the payments webhooks as a
message pact, with the bodies the demo payments service really sends), and the ``read:``
interactions of the four Chinook services against json-server 0.17.4 too. A service that drifts
(employees with ``reportsTo`` instead of ``reportsToId``) fails verification naming the field.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from pact import Verifier

from bff_chinook.demo.chinook import load_chinook
from bff_chinook.demo.jsonserver import run_json_servers
from bff_chinook.demo.payments import PaymentsConfig
from bff_chinook.demo.rest import STORE
from bff_chinook.demo.server import DemoServices, start_services
from tests.contracts.pacts import CONSUMER, PROVIDERS, READ, WEBHOOKS
from tests.support.jsonserver import require_json_server

# pact-python's verifier leaves the socket of the server it runs provider states and messages on
# to the garbage collector; that is its business, not a leak of ours.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
CHINOOK = ("customers", "catalog", "sales", "playlists")


def pact_file(provider: str) -> Path:
    return CONTRACTS / f"{CONSUMER}-{provider}.json"


def states(services: DemoServices) -> Any:
    """The provider states the pacts name, set up in the demo services' stores."""

    def handle(state: str, action: str = "setup", parameters: dict[str, Any] | None = None) -> None:
        if action != "setup":
            return
        if state == "invoice line 90001 exists":
            line = {"id": 90001, "invoiceId": 1, "trackId": 2, "unitPrice": 0.99, "quantity": 1}
            services.apps["sales"][STORE].insert("invoiceLines", line)
        elif state == "playlist entry 90001 exists":
            services.apps["playlists"][STORE].insert(
                "playlistTracks", {"id": 90001, "playlistId": 9, "trackId": 1}
            )
        elif state == "charge 1 exists":
            store = services.apps["payments"][STORE]
            if store.get("charges", 1) is None:
                # Settled, and of another invoice: "charge an invoice" may then charge invoice 5.
                store.insert("charges", {"id": 1, "invoiceId": 7, "amount": 1.98, "currency": "USD",
                                         "status": "SUCCEEDED", "failureReason": None,
                                         "createdAt": "2026-11-02T10:00:00Z"})  # fmt: skip

    return handle


def run(verifier: Verifier) -> tuple[bool, str]:
    """Run the verification (blocking: call it in a thread); whether it held, and Pact's report."""
    try:
        verifier.verify()
    except RuntimeError:  # pact-python's way of saying an interaction failed
        return False, str(verifier.output(strip_ansi=True))
    return True, str(verifier.output(strip_ansi=True))


async def verify(verifier: Verifier) -> None:
    """Fail the test with Pact's own report when the verification does not hold."""
    held, report = await asyncio.to_thread(run, verifier)
    if not held:
        pytest.fail(report, pytrace=False)


@pytest.fixture
async def demo() -> AsyncIterator[DemoServices]:
    services = await start_services(ports=dict.fromkeys((*CHINOOK, "payments"), 0))
    async with services:
        yield services


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_demo_services_honour_the_pacts(provider: str, demo: DemoServices) -> None:
    """Every interaction, reads and writes, holds against the demo service."""
    verifier = (
        Verifier(provider, host="127.0.0.1")
        .add_transport(url=demo.urls[provider])
        .add_source(pact_file(provider))
        .state_handler(states(demo), teardown=False)
    )
    await verify(verifier)


@pytest.fixture(scope="module")
async def json_servers_here(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, str]]:
    bin_path = require_json_server()
    async with run_json_servers(bin_path, tmp_path_factory.mktemp("pact-json-server")) as urls:
        yield urls


@pytest.mark.jsonserver
@pytest.mark.parametrize("provider", CHINOOK)
async def test_json_server_honours_the_read_interactions(
    provider: str, json_servers_here: dict[str, str]
) -> None:
    """The reads the BFF relies on (batched GETs with repeated parameters, X-Total-Count) hold
    against json-server 0.17.4 serving the same data."""
    verifier = (
        Verifier(provider, host="127.0.0.1")
        .add_transport(url=json_servers_here[provider])
        .add_source(pact_file(provider))
        .filter(f"^{READ}")
    )
    await verify(verifier)


async def test_the_demo_payments_webhooks_honour_the_message_pact() -> None:
    """The charge.succeeded and charge.failed webhooks the demo payments service sends (captured
    from a real delivery) are the messages the BFF expects."""
    received: dict[str, tuple[bytes, str]] = {}
    arrived = asyncio.Event()

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        kind = "charge.failed" if b'"charge.failed"' in body else "charge.succeeded"
        received[kind] = (body, request.headers["webhook-id"])
        if len(received) == 2:
            arrived.set()
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/webhooks/payments", receive)
    runner = web.AppRunner(receiver)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = next(address[1] for address in runner.addresses if isinstance(address, tuple))
    config = PaymentsConfig(
        webhook_url=f"http://127.0.0.1:{port}/webhooks/payments",
        webhook_secret="whsec_" + __import__("base64").b64encode(secrets.token_bytes(24)).decode(),
        settle_delay_ms=10,
    )
    services = await start_services(ports={"payments": 0}, payments=config)
    try:
        async with services, httpx.AsyncClient() as client:
            for invoice_id, amount in ((5, 3.96), (6, 25.0)):
                body = {"invoiceId": invoice_id, "amount": amount, "currency": "USD"}
                (await client.post(f"{services.urls['payments']}/charges", json=body)).raise_for_status()
            async with asyncio.timeout(10):
                await arrived.wait()
    finally:
        await runner.cleanup()

    def message(kind: str) -> dict[str, Any]:
        body, webhook_id = received[kind]
        return {"contents": body, "metadata": {"webhook-id": webhook_id}, "content_type": "application/json"}

    verifier = (
        Verifier(WEBHOOKS, host="127.0.0.1")
        .message_handler({f"a {kind} webhook": message(kind) for kind in received})
        .add_source(pact_file(WEBHOOKS))
    )
    await verify(verifier)


async def test_a_service_that_renames_a_field_fails_verification_naming_it() -> None:
    """Employees with ``reportsTo`` instead of ``reportsToId``: the customers pact no longer holds,
    and Pact's report names the field."""
    data = load_chinook()
    data["employees"] = [
        {("reportsTo" if key == "reportsToId" else key): value for key, value in record.items()}
        for record in data["employees"]
    ]
    services = await start_services(ports={"customers": 0}, data=data)
    async with services:
        verifier = (
            Verifier("customers", host="127.0.0.1")
            .add_transport(url=services.urls["customers"])
            .add_source(pact_file("customers"))
            .filter("employees")
        )
        held, report = await asyncio.to_thread(run, verifier)
    assert not held
    assert "$[0] -> Actual map is missing the following keys: reportsToId" in report
