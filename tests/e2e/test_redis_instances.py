"""Two ``bff serve`` processes, A and B, over one Redis and the demo services: one BFF to the client.

Issue 11's "Done when", each over real processes: events of B reach A's subscribers once; the same
idempotency key on A and B at once makes one invoice; a rate limit counts both; an APQ document,
a cached entity and an invalidation made on one instance hold on the other. And issue 12's
subscription groups: events from Redis run once per group of subscribers.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from bff.persisted import sha256_hex
from bff_chinook.demo.payments import PAYMENTS
from bff_chinook.demo.server import ALL_PORTS, DemoServices, start_services
from tests.e2e.instances import (
    SECRET,
    Instance,
    api_key,
    instance_env,
    serve,
    signed_webhook,
    subscribe,
)
from tests.support.redis import RedisServer, prefix

RATE_LIMIT = 30
PURCHASE = """
mutation ($customerId: ID!, $trackIds: [ID!]!, $key: String!) {
  purchaseTracks(input: {customerId: $customerId, trackIds: $trackIds, idempotencyKey: $key}) {
    invoice { id }
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
INVOICES_OF = "query ($id: ID!) { customer(id: $id) { invoices { id } } }"


@dataclass
class Pair:
    """Instances A and B, the demo services they share, and an API key per test (own rate count)."""

    a: Instance
    b: Instance
    services: DemoServices
    keys: list[str]

    def key(self) -> str:
        return self.keys.pop()

    async def stats(self, service: str) -> dict[str, int]:
        async with httpx.AsyncClient() as http:
            body = (await http.get(f"{self.services.urls[service]}/_stats")).json()
        return dict(body["requests"])

    async def reset_stats(self, service: str) -> None:
        async with httpx.AsyncClient() as http:
            (await http.delete(f"{self.services.urls[service]}/_stats")).raise_for_status()


@pytest.fixture(scope="module")
async def pair(redis_server: RedisServer) -> AsyncIterator[Pair]:
    """A and B over every demo service (payments' webhooks go to B), sharing a Redis prefix."""
    keys = [api_key(f"tester{n}") for n in range(10)]
    api_keys = {digest: who for _key, entry in keys for digest, who in entry.items()}
    services = await start_services(ports=dict.fromkeys(ALL_PORTS, 0))
    async with services:
        env = instance_env(
            services.urls,
            BFF_REDIS_URL=redis_server.url,
            BFF_REDIS_PREFIX=prefix("pair"),
            BFF_API_KEYS=json.dumps(api_keys),
            BFF_RATE_LIMIT=f"{RATE_LIMIT}/minute",
            BFF_SERVICE_SALES_CACHE_TTL_MS="60000",
            BFF_SERVICE_CATALOG_CACHE_TTL_MS="60000",
        )
        async with serve("A", env) as a, serve("B", env) as b:
            services.apps["payments"][PAYMENTS].configure(
                webhook_url=b.webhook_url, webhook_secret=SECRET, settle_delay_ms=50.0, retry_initial_ms=20.0
            )
            yield Pair(a, b, services, [key for key, _entry in keys])


async def purchase(
    instance: Instance, key: str, customer_id: str, track_id: str, idempotency_key: str = ""
) -> str:
    data = await instance.data(
        PURCHASE,
        {"customerId": customer_id, "trackIds": [track_id], "key": idempotency_key or uuid.uuid4().hex},
        key=key,
    )
    invoice_id: str = data["purchaseTracks"]["invoice"]["id"]
    return invoice_id


async def test_a_subscriber_on_a_gets_each_invoice_created_on_b_once(pair: Pair) -> None:
    """invoiceCreated on A delivers every purchase made on B, each exactly once."""
    key = pair.key()
    query = "subscription { invoiceCreated { id } }"
    async with subscribe(pair.a, query, key=key) as subscriber:
        while not subscriber.results:  # warm up: the subscription is live once a purchase shows
            await purchase(pair.b, key, "3", "1")
            await asyncio.sleep(0.2)
        invoice_id = await purchase(pair.b, key, "3", "2")
        await subscriber.wait_for(lambda results: invoice_id in _ids(results, "invoiceCreated"))
        await asyncio.sleep(0.5)  # time for a duplicate, were there one
    seen = _ids(subscriber.results, "invoiceCreated")
    assert seen.count(invoice_id) == 1
    assert len(seen) == len(set(seen)), "no event twice"


async def test_payment_events_of_webhooks_delivered_to_b_reach_a_once(pair: Pair) -> None:
    """A payment made on A, settled by a webhook the payments service delivered to B: A's subscriber
    gets PENDING then SUCCEEDED, once each."""
    key = pair.key()
    invoice_id = await purchase(pair.a, key, "4", "3")
    query = "subscription { paymentUpdated { id status } }"
    async with subscribe(pair.a, query, key=key) as subscriber:
        probe = 800_000
        while not subscriber.results:  # warm up with webhooks sent to B by hand
            assert (await signed_webhook(pair.b.webhook_url, probe)).status_code == 202
            probe += 1
            await asyncio.sleep(0.2)
        data = await pair.a.data(PAY, {"invoiceId": invoice_id, "key": uuid.uuid4().hex}, key=key)
        charge_id = data["payInvoice"]["payment"]["id"]

        def settled(results: list[dict]) -> bool:
            return any(
                r["data"]["paymentUpdated"] == {"id": charge_id, "status": "SUCCEEDED"} for r in results
            )

        await subscriber.wait_for(settled)
        await asyncio.sleep(0.5)
    mine = [
        r["data"]["paymentUpdated"]["status"]
        for r in subscriber.results
        if r["data"]["paymentUpdated"]["id"] == charge_id
    ]
    assert mine == ["PENDING", "SUCCEEDED"]
    delivered = pair.services.apps["payments"][PAYMENTS].webhooks_to(f"msg_{charge_id}_succeeded")
    assert [d.status for d in delivered] == [202], "the one delivery went to B"


async def sharing(instance: Instance) -> tuple[float, float]:
    """The instance's subscription executions and deliveries so far (from its ``/metrics``)."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{instance.base_url}/metrics")).text
    values = {
        name.removeprefix("bff_subscription_"): float(value)
        for name, value in (line.split(" ", 1) for line in text.splitlines())
        if name.startswith("bff_subscription_")
    }
    return values["executions_total"], values["deliveries_total"]


async def test_events_from_b_run_once_per_event_for_a_group_on_a(pair: Pair) -> None:
    """Three subscribers on A of one subscription, as one principal, are one group: each event that
    reaches A through Redis (webhooks delivered to B) is executed once and delivered three times."""
    key = pair.key()
    query = "subscription { paymentUpdated { id status } }"
    async with (
        subscribe(pair.a, query, key=key) as first,
        subscribe(pair.a, query, key=key) as second,
        subscribe(pair.a, query, key=key) as third,
    ):
        subscribers = (first, second, third)
        probe = 810_000
        while not all(subscriber.results for subscriber in subscribers):  # warm up: all three listen
            assert (await signed_webhook(pair.b.webhook_url, probe)).status_code == 202
            probe += 1
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)  # the warm-up's last events delivered
        executed, delivered = await sharing(pair.a)
        charge_ids = [str(probe + n) for n in range(3)]
        for charge_id in charge_ids:
            assert (await signed_webhook(pair.b.webhook_url, int(charge_id))).status_code == 202
        for subscriber in subscribers:
            await subscriber.wait_for(lambda results: set(charge_ids) <= set(_ids(results, "paymentUpdated")))
        executions, deliveries = await sharing(pair.a)
    assert executions - executed >= len(charge_ids)
    assert deliveries - delivered == 3 * (executions - executed), "every execution went to all three"
    for subscriber in subscribers:
        assert _ids(subscriber.results, "paymentUpdated")[-3:] == charge_ids


async def test_the_same_idempotency_key_on_a_and_b_at_once_creates_one_invoice(pair: Pair) -> None:
    """Sent to A and B at the same moment (sales slowed so the first holds its key), the same key makes
    one invoice; both answers name it."""
    key = pair.key()
    idempotency_key = uuid.uuid4().hex
    async with httpx.AsyncClient() as http:
        slow = {"delay_ms": 600, "methods": ["POST"]}
        (await http.put(f"{pair.services.urls['sales']}/_faults", json=slow)).raise_for_status()
        try:
            ids = await asyncio.gather(
                purchase(pair.a, key, "6", "7", idempotency_key),
                purchase(pair.b, key, "6", "7", idempotency_key),
            )
        finally:
            await http.delete(f"{pair.services.urls['sales']}/_faults")
        invoices = (
            await http.get(f"{pair.services.urls['sales']}/invoices", params={"customerId": 6})
        ).json()
    assert ids[0] == ids[1]
    assert [str(i["id"]) for i in invoices if i.get("purchaseKey", "").endswith(idempotency_key)] == [ids[0]]


async def test_a_rate_limit_counts_requests_on_both_instances(pair: Pair) -> None:
    """30/minute split 15 and 15 over A and B is used up: the next request is 429 on either."""
    key = pair.key()
    for n in range(RATE_LIMIT):
        response = await (pair.a if n % 2 else pair.b).post("{ genres { name } }", key=key)
        assert response.status_code == 200, response.text
        assert "errors" not in response.json()
    for instance in (pair.a, pair.b):
        refused = await instance.post("{ genres { name } }", key=key)
        assert refused.status_code == 429
        assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert int(refused.headers["Retry-After"]) >= 1


async def test_an_apq_document_registered_on_a_runs_by_hash_on_b(pair: Pair) -> None:
    """APQ: the hash alone is unknown on B until A ran the document with it; then B runs it by hash."""
    key = pair.key()
    document = "{ artists(first: 2) { edges { node { name } } } }"
    apq = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(document)}}
    unknown = (await pair.b.post(None, key=key, extensions=apq)).json()
    assert unknown["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    registered = (await pair.a.post(document, key=key, extensions=apq)).json()
    by_hash = (await pair.b.post(None, key=key, extensions=apq)).json()
    assert by_hash == registered
    assert "errors" not in by_hash


async def test_an_entity_cached_by_a_is_a_hit_on_b_and_a_mutation_on_b_invalidates_it_on_a(
    pair: Pair,
) -> None:
    """A loads customer 8's invoices (one GET to sales); B answers the same from Redis (no GET); a purchase
    on B invalidates them, and A's next answer, at once, has the new invoice (one more GET)."""
    key = pair.key()
    await pair.reset_stats("sales")
    before = await pair.a.data(INVOICES_OF, {"id": "8"}, key=key)
    assert await pair.b.data(INVOICES_OF, {"id": "8"}, key=key) == before
    assert await pair.a.data(INVOICES_OF, {"id": "8"}, key=key) == before
    assert (await pair.stats("sales")).get("GET /invoices") == 1, "B and A's second load hit the cache"
    invoice_id = await purchase(pair.b, key, "8", "9")
    after = await pair.a.data(INVOICES_OF, {"id": "8"}, key=key)
    assert [i["id"] for i in after["customer"]["invoices"]] == [
        *(i["id"] for i in before["customer"]["invoices"]),
        invoice_id,
    ]
    assert (await pair.stats("sales")).get("GET /invoices") == 2


async def test_readyz_reports_redis(pair: Pair) -> None:
    """/readyz says Redis is up, with the latency of a PING."""
    ready = await pair.a.readyz()
    assert ready["status"] == "ready"
    assert ready["redis"]["status"] == "up"
    assert ready["redis"]["latencyMs"] >= 0


def _ids(results: list[dict], field: str) -> list[str]:
    return [r["data"][field]["id"] for r in results if r.get("data")]
