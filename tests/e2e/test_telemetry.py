"""Telemetry over real sockets: one scripted session, then its /metrics, its spans and its log.

The session runs the Chinook BFF over the demo services with metrics on, tracing exported over
OTLP/HTTP to a receiver on 127.0.0.1 (:mod:`tests.support.otlp`) and JSON logs captured, and the
catalog service behind a proxy that records the headers it receives (:mod:`tests.support.recorder`).
It sends queries (one continuing a client's trace), hits the entity cache, breaks the sales service
until its breaker opens, hangs the playlists service under a one-slot bulkhead, holds a subscription
open while a webhook publishes its event, delivers duplicate and forged webhooks, overflows a slow
subscriber, and is refused by a limit, the rate limit, the media type check and the auth throttle.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport
from prometheus_client.parser import text_string_to_metric_families
from standardwebhooks.webhooks import Webhook

from bff.events import EVENT_BUS, Event
from bff.telemetry import TELEMETRY
from bff_chinook.demo.payments import signed_headers
from bff_chinook.demo.server import ALL_PORTS, start_services
from bff_chinook.resolvers.topics import CHARGE_SUCCEEDED
from tests.e2e.live import SECRET, take, wait_until
from tests.e2e.stack import Stack, run_bff
from tests.support import tokens
from tests.support.logs import json_logs
from tests.support.otlp import ReceivedSpan, Receiver, run_otlp_receiver
from tests.support.recorder import Recorder, run_recorder

API_KEY = "telemetry-test-api-key-0123456789"
SECRET_VALUE = "secret-XYZ-do-not-log"
CLIENT_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN_ID = "00f067aa0ba902b7"
ALBUM = 'query Album { album(id: "1") { title artist { name } } }'
HEAVY = "query Heavy { tracks(first: 100) { edges { node { album { artist { name } } } } } }"
SLOW_TOPIC = "test.slow"
SERVER, CLIENT = 2, 3
"""``Span.SpanKind`` values of OTLP's protobuf."""


@dataclass
class Session:
    """What the scripted session left: answers, scrapes, the receiver, the recorder and the log."""

    stack: Stack
    receiver: Receiver
    catalog: Recorder
    log: str
    answers: dict[str, Any] = field(default_factory=dict)
    during: str = ""
    """/metrics while the subscription and the hanging calls were open."""
    after: str = ""
    """/metrics at the end."""
    secrets: list[str] = field(default_factory=list)
    """What the client sent or received that no log line may contain."""

    def lines(self) -> list[dict[str, Any]]:
        """The captured log, one decoded JSON object per line (fails on a line that is not JSON)."""
        return [json.loads(line) for line in self.log.splitlines() if line.strip()]


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels`` (0 when none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def families(text: str) -> set[str]:
    """The names of every sample in an exposition."""
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


@pytest.fixture(scope="module")
def captured_log() -> Iterator[io.StringIO]:
    """Every log line of the process, as JSON, while the module runs (the logging config restored)."""
    with json_logs() as stream:
        yield stream


async def scrape(stack: Stack) -> str:
    """GET /metrics."""
    response = await stack.http.get(stack.graphql_url.rsplit("/", 1)[0] + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def signed(body: bytes, *, secret: str = SECRET, msg_id: str | None = None) -> dict[str, str]:
    """Standard Webhooks headers for ``body``, signed now."""
    return signed_headers(
        Webhook(secret), msg_id or f"msg_{uuid.uuid4().hex}", body.decode(), datetime.now(UTC)
    )


@pytest.fixture(scope="module")
async def session(captured_log: io.StringIO) -> AsyncIterator[Session]:
    """Run the scripted session once for the module (see the module docstring)."""
    async with run_otlp_receiver() as receiver:
        services = await start_services(ports=dict.fromkeys(ALL_PORTS, 0))
        async with services, run_recorder(services.urls["catalog"]) as catalog:
            urls = {**services.urls, "catalog": catalog.url}
            env = {
                "BFF_WEBHOOK_SECRETS": SECRET,
                "BFF_JWT_HS256_SECRET": tokens.SECRET,
                "BFF_API_KEYS": json.dumps({sha256(API_KEY.encode()).hexdigest(): "employee:heavy"}),
                "BFF_AUTH_FAILURE_LIMIT": "1/minute",
                "BFF_RATE_LIMIT": "200/minute",
                "BFF_RATE_LIMIT_BY_COST": "true",
                "BFF_MAX_ALIASES": "1",
                "BFF_CACHE_MAX_ENTRIES": "4",
                "BFF_SUBSCRIPTION_QUEUE_SIZE": "4",
                "BFF_SERVICE_CATALOG_CACHE_TTL_MS": "60000",
                "BFF_SERVICE_SALES_RETRY_ATTEMPTS": "2",
                "BFF_SERVICE_SALES_RETRY_WAIT_INITIAL_MS": "1",
                "BFF_SERVICE_SALES_RETRY_WAIT_MAX_MS": "5",
                "BFF_SERVICE_SALES_BREAKER_THRESHOLD": "2",
                "BFF_SERVICE_SALES_BREAKER_RECOVERY_MS": "600000",
                "BFF_SERVICE_PLAYLISTS_READ_TIMEOUT_MS": "400",
                "BFF_SERVICE_PLAYLISTS_RETRY_ATTEMPTS": "1",
                "BFF_SERVICE_PLAYLISTS_MAX_CONCURRENCY": "1",
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_SERVICE_NAME": "bff-under-test",
                "OTEL_BSP_SCHEDULE_DELAY": "50",
            }
            async with run_bff("telemetry", urls, **env) as stack:
                result = Session(stack, receiver, catalog, "")
                await script(result, services.urls)
                telemetry = stack.app[TELEMETRY] if stack.app is not None else None
                assert telemetry is not None
                assert telemetry.tracing is not None
                # In a thread: the exporter posts to the receiver, which this event loop serves.
                assert await asyncio.to_thread(telemetry.tracing.force_flush)
                result.log = captured_log.getvalue()
                yield result


async def script(session: Session, service_urls: dict[str, str]) -> None:
    """The session's requests, in order; answers kept under names for the tests."""
    stack, answers = session.stack, session.answers
    employee = tokens.employee()
    session.secrets += [employee.removeprefix("Bearer "), API_KEY, SECRET_VALUE, SECRET]

    # A query continuing the client's trace, then the same query from the entity cache.
    traceparent = f"00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01"
    answers["album"] = await stack.post(ALBUM, headers={"traceparent": traceparent})
    answers["album again"] = await stack.post(ALBUM)
    # Personal data in the answer, a variable value that fails to coerce, an API key.
    answers["customer"] = await stack.post(
        "query Customer($id: ID!) { customer(id: $id) { email firstName } }",
        {"id": "1"},
        headers={"Authorization": employee},
    )
    session.secrets.append(answers["customer"]["data"]["customer"]["email"])
    answers["bad variable"] = await stack.post(
        "query Tracks($n: Int) { tracks(first: $n) { totalCount } }", {"n": SECRET_VALUE}
    )
    answers["genres"] = await stack.post("{ genres { name } }")

    # Sales fails: two calls with one retry each open its breaker; the third is not sent.
    faults = f"{service_urls['sales']}/_faults"
    (await stack.http.put(faults, json={"error_status": 503, "error_rate": 1.0})).raise_for_status()
    answers["sales"] = [await stack.post('{ invoice(id: "1") { total } }') for _ in range(3)]
    (await stack.http.delete(faults)).raise_for_status()

    # A subscription over graphql-transport-ws, fed by a webhook, while playlists hangs behind a
    # one-slot bulkhead: two identical calls share one request, a third waits.
    transport = WebsocketsTransport(
        url=stack.graphql_url.replace("http://", "ws://", 1),
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        close_timeout=2,
    )
    assert stack.app is not None
    bus = stack.app[EVENT_BUS]
    playlists_faults = f"{service_urls['playlists']}/_faults"
    async with Client(transport=transport, fetch_schema_from_transport=False) as client:
        stream = client.subscribe(
            GraphQLRequest('subscription { paymentUpdated(invoiceId: "3") { id status } }')
        )
        first = asyncio.ensure_future(take(stream, 1))
        await wait_until(lambda: bus.subscriber_count(CHARGE_SUCCEEDED) == 1)
        (await stack.http.put(playlists_faults, json={"hang": True})).raise_for_status()
        hanging = [
            asyncio.ensure_future(stack.post(f'{{ playlist(id: "{playlist}") {{ name }} }}'))
            for playlist in ("1", "1", "2")
        ]
        session.during = await _scrape_when_queued(stack)
        charge = {"id": 7, "invoiceId": 3, "amount": 5.94, "currency": "USD", "status": "SUCCEEDED"}
        body = json.dumps({"type": "charge.succeeded", "timestamp": "2026-11-01T00:00:00Z", "data": charge})
        headers = signed(body.encode())
        webhook = stack.graphql_url.rsplit("/", 1)[0] + "/webhooks/payments"
        answers["webhooks"] = [
            (await stack.http.post(webhook, content=body, headers=headers)).status_code,
            (await stack.http.post(webhook, content=body, headers=headers)).status_code,
            (await stack.http.post(webhook, content=body + " ", headers=headers)).status_code,
        ]
        answers["event"] = await first
        answers["hanging"] = await asyncio.gather(*hanging)
    (await stack.http.delete(playlists_faults)).raise_for_status()

    # A subscriber that never reads overflows its queue of 4 and is dropped.
    async with bus.subscribe(SLOW_TOPIC):
        for n in range(5):
            await bus.publish(Event(SLOW_TOPIC, {"n": n}))

    # Refusals: a limit, the rate limit (by cost, per principal), the media type, the auth throttle.
    answers["aliases"] = await stack.post("{ a: genres { name } b: genres { name } }")
    answers["heavy"] = [await stack.post(HEAVY, headers={"X-Api-Key": API_KEY}) for _ in range(2)]
    answers["media type"] = (
        await stack.http.post(stack.graphql_url, content=b"{}", headers={"Content-Type": "text/plain"})
    ).status_code
    bad = "Bearer " + tokens.token(sub="x", exp=int(time.time()) - 3600)
    session.secrets.append(bad.removeprefix("Bearer "))
    answers["auth"] = [
        (
            await stack.http.post(
                stack.graphql_url, json={"query": "{ genres { name } }"}, headers={"Authorization": bad}
            )
        ).status_code
        for _ in range(2)
    ]
    session.after = await scrape(stack)


async def _scrape_when_queued(stack: Stack) -> str:
    """/metrics once the playlists bulkhead has one call in its slot and one queued."""
    deadline = time.monotonic() + 5
    while True:
        text = await scrape(stack)
        queued = metric(text, "bff_downstream_bulkhead_queued", service="playlists")
        if queued == 1 or time.monotonic() > deadline:
            return text
        await asyncio.sleep(0.02)


# Metrics ----------------------------------------------------------------------------------------


def test_every_family_is_exported(session: Session) -> None:
    """/metrics lists every family of the issue once the session ran: operations, downstream,
    cache, limits, live, webhooks and the process collectors."""
    exported = families(session.after) | families(session.during)
    for name in (
        "bff_operation_duration_seconds_bucket",
        "bff_operation_duration_seconds_count",
        "bff_operation_errors_total",
        "bff_refusals_total",
        "bff_rate_limited_total",
        "bff_downstream_request_duration_seconds_count",
        "bff_downstream_retries_total",
        "bff_downstream_breaker_state",
        "bff_downstream_breaker_transitions_total",
        "bff_downstream_bulkhead_in_use",
        "bff_downstream_bulkhead_queued",
        "bff_downstream_inflight_shared_total",
        "bff_cache_hits_total",
        "bff_cache_misses_total",
        "bff_cache_stale_served_total",
        "bff_cache_evictions_total",
        "bff_cache_entries",
        "bff_cache_bytes",
        "bff_websocket_connections",
        "bff_subscriptions_active",
        "bff_events_published_total",
        "bff_events_delivered_total",
        "bff_slow_subscribers_dropped_total",
        "bff_webhooks_received_total",
        "bff_webhooks_refused_total",
        "process_resident_memory_bytes",
        "python_gc_collections_total",
    ):
        assert name in exported, name


def test_operations_are_counted_by_type_and_outcome(session: Session) -> None:
    """Each HTTP query is one observation; names are `unknown` without a safelist; the failed sales
    calls are partial (data with errors) and refusals are errors."""
    after = session.after
    assert {name for name in families(after) if name.startswith("bff_operation_duration")} >= {
        "bff_operation_duration_seconds_bucket"
    }
    count = "bff_operation_duration_seconds_count"
    # Success: album x2, customer, genres, the first heavy one.
    assert metric(after, count, operation_type="query", operation_name="unknown", outcome="success") == 5
    assert metric(after, count, operation_type="query", outcome="partial") == 6  # 3 sales, 3 playlists
    assert metric(after, count, operation_type="query", outcome="error") == 3  # variable, aliases, heavy
    assert metric(after, count, operation_type="subscription") == 0  # counted as active instead


def test_errors_and_refusals_are_counted_by_code(session: Session) -> None:
    """Field errors by code, refusals by the code they were refused with, and both rate limits."""
    after = session.after
    errors = "bff_operation_errors_total"
    assert metric(after, errors, code="DOWNSTREAM_UNAVAILABLE") == 2
    assert metric(after, errors, code="CIRCUIT_OPEN") == 1
    assert metric(after, errors, code="DOWNSTREAM_TIMEOUT") == 3
    assert metric(after, errors, code="BAD_USER_INPUT") == 1
    refusals = "bff_refusals_total"
    assert metric(after, refusals, code="BAD_USER_INPUT") == 1
    assert metric(after, refusals, code="TOO_MANY_ALIASES") == 1
    assert metric(after, refusals, code="RATE_LIMITED") == 2  # the operation's and the auth throttle's
    assert metric(after, refusals, code="UNSUPPORTED_MEDIA_TYPE") == 1
    assert metric(after, refusals, code="UNAUTHENTICATED") == 1
    assert metric(after, "bff_rate_limited_total", limit="operations") == 1
    assert metric(after, "bff_rate_limited_total", limit="auth_failures") == 1
    assert [answer["errors"][0]["extensions"]["code"] for answer in session.answers["heavy"][1:]] == [
        "RATE_LIMITED"
    ]
    assert session.answers["media type"] == 415
    assert session.answers["auth"] == [401, 429]


def test_downstream_failures_retries_and_the_breaker(session: Session) -> None:
    """Sales answered 503 four times (two calls, one retry each), then its breaker opened and the
    third call was never sent; playlists timed out twice; catalog answered 2xx."""
    after = session.after
    duration = "bff_downstream_request_duration_seconds_count"
    assert metric(after, duration, service="sales", method="GET", status_class="5xx") == 4
    assert metric(after, "bff_downstream_retries_total", service="sales", method="GET") == 2
    assert metric(after, "bff_downstream_breaker_transitions_total", service="sales", state="open") == 1
    assert metric(after, "bff_downstream_breaker_state", service="sales", state="open") == 1
    assert metric(after, "bff_downstream_breaker_state", service="sales", state="closed") == 0
    assert metric(after, "bff_downstream_breaker_state", service="catalog", state="closed") == 1
    assert metric(after, duration, service="playlists", method="GET", status_class="timeout") == 2
    assert metric(after, duration, service="catalog", method="GET", status_class="2xx") >= 4
    codes = [answer["errors"][0]["extensions"]["code"] for answer in session.answers["sales"]]
    assert codes == ["DOWNSTREAM_UNAVAILABLE", "DOWNSTREAM_UNAVAILABLE", "CIRCUIT_OPEN"]


def test_bulkhead_and_in_flight_sharing(session: Session) -> None:
    """While playlists hung: one call in the slot, one queued; two identical GETs shared one
    request; afterwards the bulkhead is empty."""
    during, after = session.during, session.after
    assert metric(during, "bff_downstream_bulkhead_in_use", service="playlists") == 1
    assert metric(during, "bff_downstream_bulkhead_queued", service="playlists") == 1
    assert metric(after, "bff_downstream_bulkhead_in_use", service="playlists") == 0
    assert metric(after, "bff_downstream_bulkhead_queued", service="playlists") == 0
    assert metric(after, "bff_downstream_inflight_shared_total", service="playlists") == 1


def test_cache_hits_misses_evictions_and_size(session: Session) -> None:
    """The second album query came from the cache (album and artist: two hits); four entries at most
    are kept, so later answers evicted some; entries and bytes describe what is left."""
    after = session.after
    assert session.answers["album again"]["data"] == session.answers["album"]["data"]
    assert metric(after, "bff_cache_hits_total", service="catalog") >= 2
    assert metric(after, "bff_cache_misses_total", service="catalog") >= 2
    assert metric(after, "bff_cache_stale_served_total", service="catalog") == 0
    assert metric(after, "bff_cache_evictions_total", service="catalog") >= 1
    assert metric(after, "bff_cache_entries") == 4
    assert metric(after, "bff_cache_bytes") > 0


def test_live_connections_subscriptions_events_and_webhooks(session: Session) -> None:
    """During the session one WebSocket and one paymentUpdated subscription were open, none after;
    the webhook's event was published once and delivered once; the slow subscriber was dropped;
    webhooks were accepted, duplicate and refused once each."""
    during, after = session.during, session.after
    assert metric(during, "bff_websocket_connections") == 1
    assert metric(during, "bff_subscriptions_active", field="paymentUpdated") == 1
    assert metric(after, "bff_websocket_connections") == 0
    assert metric(after, "bff_subscriptions_active", field="paymentUpdated") == 0
    assert metric(after, "bff_events_published_total", topic=CHARGE_SUCCEEDED) == 1
    assert metric(after, "bff_events_delivered_total", topic=CHARGE_SUCCEEDED) == 1
    assert metric(after, "bff_events_published_total", topic=SLOW_TOPIC) == 5
    assert metric(after, "bff_events_delivered_total", topic=SLOW_TOPIC) == 0
    assert metric(after, "bff_slow_subscribers_dropped_total") == 1
    assert session.answers["webhooks"] == [202, 200, 401]
    assert [result["paymentUpdated"]["status"] for result in session.answers["event"]] == ["SUCCEEDED"]
    received = "bff_webhooks_received_total"
    assert metric(after, received, endpoint="payments", outcome="accepted") == 1
    assert metric(after, received, endpoint="payments", outcome="duplicate") == 1
    assert metric(after, received, endpoint="payments", outcome="refused") == 1
    assert (
        metric(after, "bff_webhooks_refused_total", endpoint="payments", code="WEBHOOK_SIGNATURE_INVALID")
        == 1
    )


# Traces -----------------------------------------------------------------------------------------


def spans_of(session: Session, trace_id: str) -> list[ReceivedSpan]:
    """The spans the receiver got for one trace."""
    return [span for span in session.receiver.spans if span.trace_id == trace_id]


async def test_an_operation_is_one_span_with_its_downstream_calls_as_children(session: Session) -> None:
    """The album query continues the client's trace: its SERVER span (graphql.operation.*, child of
    the client's span) has a CLIENT span per catalog request, and catalog saw that trace id in
    traceparent; the response carries the trace id."""
    assert session.answers["album"]["extensions"]["traceId"] == CLIENT_TRACE_ID
    await session.receiver.wait_for(lambda spans: any(s.trace_id == CLIENT_TRACE_ID for s in spans))
    spans = spans_of(session, CLIENT_TRACE_ID)
    [operation] = [span for span in spans if span.kind == SERVER]
    assert operation.name == "query Album"
    assert operation.parent_span_id == CLIENT_SPAN_ID
    assert operation.attributes["graphql.operation.name"] == "Album"
    assert operation.attributes["graphql.operation.type"] == "query"
    assert operation.resource["service.name"] == "bff-under-test"
    children = [span for span in spans if span.parent_span_id == operation.span_id]
    assert len(children) == 2
    assert {span.kind for span in children} == {CLIENT}
    assert {span.attributes["bff.service"] for span in children} == {"catalog"}
    assert all(span.attributes["http.response.status_code"] == 200 for span in children)
    assert all("?" not in span.attributes["url.full"] for span in children)  # queries may hold emails
    parents = {value.split("-")[2] for value in session.catalog.values("traceparent")}
    assert {value.split("-")[1] for value in session.catalog.values("traceparent")} >= {CLIENT_TRACE_ID}
    assert {span.span_id for span in children} <= parents


async def test_failed_calls_are_error_spans_and_each_operation_its_own_trace(session: Session) -> None:
    """Without a traceparent each operation starts a trace of its own; a sales call answered 503 is a
    CLIENT span with error status under the operation's span."""
    trace_ids = [answer["extensions"]["traceId"] for answer in session.answers["sales"]]
    assert len(set(trace_ids)) == 3
    await session.receiver.wait_for(lambda spans: any(s.trace_id == trace_ids[0] for s in spans))
    spans = spans_of(session, trace_ids[0])
    [operation] = [span for span in spans if span.kind == SERVER]
    failed = [span for span in spans if span.kind == CLIENT]
    assert len(failed) == 2  # the attempt and its retry
    assert all(span.parent_span_id == operation.span_id for span in failed)
    assert all(span.attributes["http.response.status_code"] == 503 for span in failed)
    assert all(span.status_code == 2 for span in failed)  # STATUS_CODE_ERROR


# Logs -------------------------------------------------------------------------------------------


def test_the_log_is_json_lines_with_request_and_trace_ids(session: Session) -> None:
    """Every line is a JSON object; every line of the BFF during a request carries its request id;
    one access line per operation, each with the operation's trace id and its fields."""
    lines = session.lines()
    assert lines
    ours = [line for line in lines if line["logger"].startswith("bff.")]
    assert ours
    assert [line for line in ours if "request_id" not in line] == []
    access = [line for line in ours if line["logger"] == "bff.access"]
    operations = [line for line in access if line["event"] == "operation"]
    # HTTP: album x2, customer, variable, genres, sales x3, playlists x3, aliases, heavy x2, auth x0
    # (refused before any operation: "request" lines); WebSocket: the subscription.
    assert len(operations) == 15
    assert all(len(line["trace_id"]) == 32 for line in operations)
    [album] = [
        line for line in operations if line.get("operation_name") == "Album" and line["downstream_calls"]
    ]
    assert album["trace_id"] == CLIENT_TRACE_ID
    assert (album["status"], album["transport"], album["outcome"]) == (200, "http", "success")
    assert album["downstream_calls"] == 2
    assert album["duration_ms"] > 0
    [subscription] = [line for line in operations if line["transport"] == "ws"]
    assert subscription["operation_type"] == "subscription"
    requests = [line for line in access if line["event"] == "request"]
    assert sorted(line["status"] for line in requests) == [401, 415, 429]
    assert {code for line in requests for code in line["error_codes"]} == {
        "UNAUTHENTICATED",
        "UNSUPPORTED_MEDIA_TYPE",
        "RATE_LIMITED",
    }
    sales = [line for line in operations if "CIRCUIT_OPEN" in line["error_codes"]]
    assert [line["outcome"] for line in sales] == ["partial"]


def test_the_log_holds_no_secret_and_no_downstream_lines_at_info(session: Session) -> None:
    """No token, API key, webhook secret, email or variable value appears anywhere in the log, and at
    INFO neither bff.downstream nor httpx writes a line per request."""
    for secret in session.secrets:
        assert secret not in session.log, secret
    assert "@" not in session.log
    loggers = {line["logger"] for line in session.lines()}
    assert not loggers & {"bff.downstream", "httpx", "httpcore"}
