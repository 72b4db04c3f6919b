"""Subscriptions under load: delivery latency p50/p99 and memory per idle WebSocket connection.

Run ``python bench/subscriptions.py [--subscribers N] [--events E] [--interval-ms MS | --rate R]
[--baseline DIR]`` from the repository root. ``--rate`` is the wanted deliveries per second (events per
second times subscribers): ``--subscribers 1000 --rate 2000`` publishes one event every 500 ms.
``--baseline DIR`` serves the bff of another checkout (e.g. the base commit) instead of this one. It
starts one ``bff serve`` child process on 127.0.0.1 (no downstream service is needed: the
subscription selects only fields of the event) and drives it from this process:

1. memory: the BFF's resident set size (RSS) before and after ``--subscribers`` idle connections
   (``connection_init`` acknowledged), and again once each has one ``paymentUpdated`` subscription;
   the differences divided by N are the memory per idle connection and per idle subscription;
2. latency: ``--events`` signed ``charge.succeeded`` webhooks, one every ``--interval-ms``; for every
   (event, subscriber) pair, the time from just before the webhook POST to the subscriber receiving
   the event: p50, p90, p99 and max in ms, over N x E deliveries (none may be lost); and the CPU
   time the BFF and this load generator spent per delivery meanwhile (the machine is shared: CPU
   time is what another process's load does not change);
3. burst: ``--events`` more webhooks sent back to back; the time until every subscriber has all of
   them, as deliveries per second.

Latency spans the whole path: webhook verification, idempotency claim, the worker, the event bus,
the GraphQL execution (one per event since subscribers with the same document, variables and
principal share it; before, one per subscriber), the WebSocket write and this process reading it. The machine
is shared by the BFF and this load generator, so read the figures as an order of magnitude. Results
go to ``bench/results/subscriptions-<UTC timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import resource
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import psutil
from _children import bff_checkout
from _raw_ws import RawSubscriber, open_subscriber
from standardwebhooks.webhooks import Webhook

from bff_chinook.demo.payments import signed_headers

BENCH_DIR: Final = Path(__file__).resolve().parent
RESULTS_DIR: Final = BENCH_DIR / "results"
SECRET: Final = "whsec_" + base64.b64encode(b"bench: subscriptions secret 32 B").decode()
SUBSCRIPTION: Final = {"query": "subscription { paymentUpdated { id status } }"}
MARKER: Final = b'"paymentUpdated":'
"""What a result frame of the subscription carries before its charge id."""
CONNECT_CONCURRENCY: Final = 50
START_TIMEOUT_S: Final = 30.0
PHASE_TIMEOUT_S: Final = 300.0
CONNECTION_HEADROOM: Final = 64
"""Connections from this address beyond the subscribers' (the webhook client's)."""
SETTLE_S: Final = 1.0
"""Pause before reading RSS, so allocations of the last connections have settled."""


async def start_bff(subscribers: int, checkout: Path | None) -> tuple[asyncio.subprocess.Process, str]:
    """``bff serve --port 0`` with the webhook secret, allowing ``subscribers`` connections from this
    one address, from ``checkout`` (default: this one); returns the process and its base URL."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BFF_")}
    env.update(
        BFF_WEBHOOK_SECRETS=SECRET,
        BFF_LOG_LEVEL="WARNING",
        BFF_MAX_REQUESTS_PER_CLIENT=str(subscribers + CONNECTION_HEADROOM),
    )
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "bff.cli", "serve", "--port", "0"),
        env=env,
        cwd=checkout,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while not (line := (await process.stdout.readline()).decode()).startswith("GraphiQL: "):
                if not line:
                    raise RuntimeError("bff serve exited before it was ready")
    except BaseException:
        await stop(process)
        raise
    return process, line.removeprefix("GraphiQL: ").strip().removesuffix("/graphql")


async def stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if process.returncode is None:
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 10)
    except TimeoutError:
        process.kill()
        await process.wait()


def rss_mib(pid: int) -> float:
    """Resident set size of a process, in MiB."""
    return float(psutil.Process(pid).memory_info().rss) / 2**20


def cpu_s(pid: int) -> float:
    """CPU time (user and system) a process has used so far, in seconds."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def percentile(values: list[float], share: float) -> float:
    """The ``share`` (0..1) percentile by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


class Publisher:
    """Signed charge.succeeded webhooks to the BFF."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http = http
        self.url = url
        self.signer = Webhook(SECRET)

    async def publish(self, charge_id: int) -> float:
        """Send one webhook; returns the monotonic time just before the POST."""
        charge = {"id": charge_id, "invoiceId": 1, "amount": 0.99, "currency": "USD", "status": "SUCCEEDED"}
        body = json.dumps({"type": "charge.succeeded", "data": charge})
        headers = signed_headers(self.signer, f"msg_bench_{charge_id}", body, datetime.now(UTC))
        sent = time.monotonic()
        response = await self.http.post(self.url, content=body, headers=headers)
        if response.status_code != 202:
            raise RuntimeError(f"webhook refused: {response.status_code} {response.text}")
        return sent


async def wait_for(subscribers: list[RawSubscriber], charge_ids: range) -> None:
    """Wait until every subscriber has every one of ``charge_ids``."""
    async with asyncio.timeout(PHASE_TIMEOUT_S):
        for subscriber in subscribers:
            while not all(charge_id in subscriber.arrivals for charge_id in charge_ids):
                subscriber.changed.clear()
                await subscriber.changed.wait()


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Run the three phases against a fresh BFF process; returns the figures."""
    process, base_url = await start_bff(args.subscribers, args.baseline)
    results: dict[str, Any] = {
        "subscribers": args.subscribers,
        "events": args.events,
        "baseline": str(args.baseline) if args.baseline else None,
    }
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            await asyncio.sleep(SETTLE_S)
            baseline = rss_mib(process.pid)
            gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
            address = urlsplit(base_url)
            host, port = address.hostname, address.port
            assert host is not None
            assert port is not None

            async def connect() -> RawSubscriber:
                async with gate, asyncio.timeout(30):
                    subscriber = await open_subscriber(host, port, "/graphql", "graphql-transport-ws", MARKER)
                    subscriber.send_json({"type": "connection_init"})
                    ack = await subscriber.receive_json()
                    if ack.get("type") != "connection_ack":
                        raise RuntimeError(f"no connection_ack: {ack}")
                    return subscriber

            subscribers = await asyncio.gather(*(connect() for _ in range(args.subscribers)))
            await asyncio.sleep(SETTLE_S)
            connected = rss_mib(process.pid)
            for subscriber in subscribers:
                subscriber.send_json({"id": "1", "type": "subscribe", "payload": SUBSCRIPTION})
            await asyncio.sleep(SETTLE_S)
            subscribed = rss_mib(process.pid)
            results["memory"] = {
                "rss_baseline_mib": round(baseline, 1),
                "rss_connected_mib": round(connected, 1),
                "rss_subscribed_mib": round(subscribed, 1),
                "kib_per_idle_connection": round((connected - baseline) * 1024 / args.subscribers, 1),
                "kib_per_idle_subscription": round((subscribed - baseline) * 1024 / args.subscribers, 1),
            }

            publisher = Publisher(http, f"{base_url}/webhooks/payments")
            # Warm up until every subscriber is registered on the bus (it has seen an event).
            warm_up = 10_000_000
            while not all(s.arrivals for s in subscribers):
                await publisher.publish(warm_up)
                warm_up += 1
                await asyncio.sleep(0.2)

            bff_cpu, own_cpu = cpu_s(process.pid), cpu_s(os.getpid())
            sent: dict[int, float] = {}
            spaced = range(1, args.events + 1)
            for charge_id in spaced:
                sent[charge_id] = await publisher.publish(charge_id)
                await asyncio.sleep(args.interval_ms / 1000)
            await wait_for(subscribers, spaced)
            latencies = [(s.arrivals[i] - sent[i]) * 1000 for s in subscribers for i in spaced]
            results["latency_ms"] = {
                "interval_ms": args.interval_ms,
                "deliveries_per_s": round(args.subscribers * 1000 / args.interval_ms),
                "deliveries": len(latencies),
                "p50": round(statistics.median(latencies), 2),
                "p90": round(percentile(latencies, 0.90), 2),
                "p99": round(percentile(latencies, 0.99), 2),
                "max": round(max(latencies), 2),
                "bff_cpu_us_per_delivery": round((cpu_s(process.pid) - bff_cpu) * 1e6 / len(latencies), 1),
                "client_cpu_us_per_delivery": round((cpu_s(os.getpid()) - own_cpu) * 1e6 / len(latencies), 1),
            }

            burst = range(args.events + 1, 2 * args.events + 1)
            started = time.monotonic()
            for charge_id in burst:
                await publisher.publish(charge_id)
            await wait_for(subscribers, burst)
            elapsed = time.monotonic() - started
            deliveries = args.subscribers * args.events
            results["burst"] = {
                "deliveries": deliveries,
                "seconds": round(elapsed, 2),
                "deliveries_per_s": round(deliveries / elapsed),
            }
            for subscriber in subscribers:
                subscriber.close()
    finally:
        await stop(process)
    return results


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--subscribers", type=int, default=1_000, help="WebSocket clients (default 1000)")
    parser.add_argument("--events", type=int, default=100, help="events per phase (default 100)")
    spacing = parser.add_mutually_exclusive_group()
    spacing.add_argument(
        "--interval-ms", type=float, default=500.0, help="spacing of latency events (default 500)"
    )
    spacing.add_argument(
        "--rate", type=float, help="deliveries per second in the latency phase (sets --interval-ms)"
    )
    parser.add_argument(
        "--baseline",
        type=bff_checkout,
        help="a bff checkout to serve instead of this one, e.g. the base commit",
    )
    args = parser.parse_args(argv)
    if args.rate is not None:
        args.interval_ms = 1000 * args.subscribers / args.rate
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the figures and save them as JSON."""
    args = _parse(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = args.subscribers + 256
    if soft < needed and (hard == resource.RLIM_INFINITY or hard >= needed):
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    results = asyncio.run(bench(args))
    results["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    print(json.dumps(results, indent=2))
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS_DIR / f"subscriptions-{stamp}.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
