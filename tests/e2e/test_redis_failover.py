"""Real ``bff serve`` processes over a Redis that fails: an instance SIGKILLed while it holds an accepted
webhook, and Redis itself stopped mid-traffic.

To hold a webhook accepted but unpublished on purpose, the test gives instance B a Redis user that may
write the webhook queue but only read the bus's log (Redis ACLs): B answers 202, takes the delivery,
and cannot publish it. Instance A, the rescuer, may not touch the queue until B is dead; the test then
grants it. Everything else (consumer group, pending entries, takeover, the publish script) is what
runs in production.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from bff_chinook.demo.payments import PAYMENTS
from bff_chinook.demo.server import ALL_PORTS, DemoServices, start_services
from tests.e2e.instances import SECRET, Instance, Subscriber, instance_env, serve, signed_webhook, subscribe
from tests.support.redis import RedisServer, prefix

PURCHASE = """
mutation ($key: String!) {
  purchaseTracks(input: {customerId: "2", trackIds: ["5"], idempotencyKey: $key}) {
    invoice { id }
    userErrors { code }
  }
}
"""
PAY = """
mutation ($invoiceId: ID!, $key: String!) {
  payInvoice(input: {invoiceId: $invoiceId, idempotencyKey: $key}) { payment { id status } }
}
"""


@pytest.fixture(scope="module")
async def services() -> AsyncIterator[DemoServices]:
    """Every demo service, payments included, for this module's instances."""
    async with await start_services(ports=dict.fromkeys(ALL_PORTS, 0)) as running:
        yield running


async def acl(admin: Redis, user: str, *rules: str) -> str:
    """Create or extend Redis user ``user`` with ``rules``; returns its password."""
    password = f"pw-{user}"
    await admin.execute_command("ACL", "SETUSER", user, "on", f">{password}", *rules)
    return password


async def test_sigkill_of_the_instance_holding_an_accepted_webhook_loses_nothing(
    redis_server: RedisServer, services: DemoServices
) -> None:
    """B accepts a payment's webhook (202) and holds it unpublished; B is SIGKILLed; A takes it over and
    publishes it: A's subscriber gets the payment's SUCCEEDED once."""
    p = prefix("kill")
    admin = redis_server.client()
    common = ("resetkeys", f"~{p}:*", f"~{{{p}:apq}}*", "&*", "+@all")
    ingress = await acl(admin, "ingress", *common, f"%R~{{{p}:events}}:log", f"~{{{p}:events}}:webhook*")
    rescuer = await acl(admin, "rescuer", *common, f"~{{{p}:events}}:log", f"~{{{p}:events}}:webhook:*")
    settings = {"BFF_REDIS_PREFIX": p, "BFF_WEBHOOK_CLAIM_IDLE_MS": "500"}
    env_a = instance_env(services.urls, BFF_REDIS_URL=redis_server.url_for("rescuer", rescuer), **settings)
    env_b = instance_env(services.urls, BFF_REDIS_URL=redis_server.url_for("ingress", ingress), **settings)
    queue, log = f"{{{p}:events}}:webhooks", f"{{{p}:events}}:log"
    try:
        async with serve("A", env_a) as a, serve("B", env_b) as b:
            payments = services.apps["payments"][PAYMENTS]
            payments.configure(webhook_url=b.webhook_url, webhook_secret=SECRET, settle_delay_ms=50.0)
            async with subscribe(a, "subscription { paymentUpdated { id status } }") as subscriber:
                charge_id = await _pay_until_seen(a, subscriber)
                webhook_id = f"msg_{charge_id}_succeeded"
                await _until(lambda: any(d.status == 202 for d in payments.webhooks_to(webhook_id)))
                pending = await admin.xpending(queue, "bff-webhooks")
                assert pending["pending"] >= 1, "B took the delivery and could not publish it"
                assert all(str(b.process.pid) in c["name"].decode() for c in pending["consumers"])
                await b.kill()
                assert _statuses(subscriber, charge_id) == ["PENDING"], "not published before the kill"
                await acl(admin, "rescuer", f"~{queue}")  # A may take the queue over now
                await subscriber.wait_for(lambda _r: "SUCCEEDED" in _statuses(subscriber, charge_id))
                await asyncio.sleep(0.5)
                assert _statuses(subscriber, charge_id) == ["PENDING", "SUCCEEDED"]
            assert await admin.xlen(queue) == 0
            published = [
                fields for _id, fields in await admin.xrange(log) if webhook_id.encode() in fields[b"id"]
            ]
            assert len(published) == 1, "published once"
            assert [d.status for d in payments.webhooks_to(webhook_id)] == [202], "no redelivery was needed"
    finally:
        await admin.aclose()


async def test_redis_stopped_mid_traffic_then_back(redis_server: RedisServer, services: DemoServices) -> None:
    """Redis killed under a stream of queries on A and B: every query still answers; a purchase gets 503
    with Retry-After, a webhook 503, /readyz says degraded; rate limits let requests through. Redis
    restarted (empty): purchases, webhooks and events between the instances work again, no restart."""
    env = instance_env(
        services.urls,
        BFF_REDIS_URL=redis_server.url,
        BFF_REDIS_PREFIX=prefix("outage"),
        BFF_RATE_LIMIT="100000/minute",
        BFF_SERVICE_CATALOG_CACHE_TTL_MS="60000",
    )
    async with serve("A", env) as a, serve("B", env) as b:
        failures: list[str] = []
        answered = 0
        stop = asyncio.Event()

        async def traffic() -> None:
            nonlocal answered
            while not stop.is_set():
                for instance in (a, b):
                    response = await instance.post('{ track(id: "3") { name album { title } } }')
                    if response.status_code != 200 or "errors" in response.json():
                        failures.append(response.text)
                    answered += 1
                await asyncio.sleep(0.02)

        running = asyncio.create_task(traffic())
        try:
            async with subscribe(a, "subscription { invoiceCreated { id } }") as subscriber:
                while not subscriber.results:
                    await _purchase(b)
                    await asyncio.sleep(0.2)
                await redis_server.stop(kill=True)

                refused = await b.post(PURCHASE, {"key": uuid.uuid4().hex})
                assert refused.status_code == 503
                assert int(refused.headers["Retry-After"]) >= 1
                assert [e["extensions"]["code"] for e in refused.json()["errors"]] == [
                    "IDEMPOTENCY_UNAVAILABLE"
                ]
                assert "data" not in refused.json()
                webhook = await signed_webhook(b.webhook_url, 900_001)
                assert webhook.status_code == 503
                assert webhook.json()["error"]["code"] == "WEBHOOK_UNAVAILABLE"
                assert int(webhook.headers["Retry-After"]) >= 1
                ready = await a.readyz()
                assert (ready["status"], ready["redis"]) == ("degraded", {"status": "down"})
                during = answered
                await asyncio.sleep(1.0)
                assert answered > during, "queries go on while Redis is down"

                await redis_server.start()
                await _until_async(lambda: _redis_up(a))
                await _until_async(lambda: _redis_up(b))
                invoice_id = (await _purchase(b, wait_for_redis=True))["purchaseTracks"]["invoice"]["id"]
                await subscriber.wait_for(lambda results: invoice_id in _invoice_ids(results))
                await asyncio.sleep(0.5)
                assert _invoice_ids(subscriber.results).count(invoice_id) == 1
                assert (await signed_webhook(b.webhook_url, 900_002)).status_code == 202
        finally:
            stop.set()
            await running
        assert failures == []
        assert answered > 0


async def _purchase(instance: Instance, *, wait_for_redis: bool = False) -> dict:
    for _ in range(20):
        response = await instance.post(PURCHASE, {"key": uuid.uuid4().hex})
        if response.status_code == 503 and wait_for_redis:
            await asyncio.sleep(0.5)
            continue
        body = response.json()
        assert response.status_code == 200, body
        assert "errors" not in body, body
        return dict(body["data"])
    pytest.fail("purchases kept failing after Redis came back")


async def _pay_until_seen(a: Instance, subscriber: Subscriber) -> str:
    """Pay fresh invoices on A until the subscriber has seen a PENDING (it is live); the last charge id."""
    while True:
        invoice_id = (await _purchase(a))["purchaseTracks"]["invoice"]["id"]
        response = await a.post(PAY, {"invoiceId": invoice_id, "key": uuid.uuid4().hex})
        charge_id: str = response.json()["data"]["payInvoice"]["payment"]["id"]
        try:
            await subscriber.wait_for(lambda _r, cid=charge_id: "PENDING" in _statuses(subscriber, cid), 1.0)
        except TimeoutError:
            continue
        return charge_id


def _statuses(subscriber: Subscriber, charge_id: str) -> list[str]:
    return [
        r["data"]["paymentUpdated"]["status"]
        for r in subscriber.results
        if r.get("data") and r["data"]["paymentUpdated"]["id"] == charge_id
    ]


def _invoice_ids(results: list[dict]) -> list[str]:
    return [r["data"]["invoiceCreated"]["id"] for r in results if r.get("data")]


async def _redis_up(instance: Instance) -> bool:
    return (await instance.readyz()).get("redis", {}).get("status") == "up"


async def _until(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - the payments service's log is the state
            await asyncio.sleep(0.02)


async def _until_async(condition: Callable[[], Awaitable[bool]], timeout_s: float = 15.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not await condition():  # noqa: ASYNC110 - the state is another process's
            await asyncio.sleep(0.1)
