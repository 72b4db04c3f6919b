"""Several BFF processes over one Redis: throughput of 1 process, 2 processes, 2 workers; event fan-out.

Run ``python bench/instances.py [--duration S] [--connections C] [--rounds R] [--subscribers N]
[--events E] [--interval-ms MS]`` from the repository root with the project installed; it needs
``redis-server`` and ``wrk`` (Debian packages) and uses only 127.0.0.1. It starts, in child
processes, a redis-server of its own (free port, no persistence), the four demo services
(``bench/_services.py``) and three BFF set-ups, all with ``BFF_REDIS_URL`` to that Redis (each with
its own key prefix) and every service's ``CACHE_TTL_MS=60000``:

==============  ==========================================================================
``1 process``   one ``bff serve``
``2 processes`` two ``bff serve`` on two ports; wrk's two threads take one port each, as a
                round-robin load balancer would
``2 workers``   ``bff serve --workers 2``: two processes on one port (``SO_REUSEPORT``)
==============  ==========================================================================

**Throughput.** Per query and round, each set-up in turn: 3 s of warm-up, then ``--duration`` s of
``wrk -t2 -c<connections>`` POSTing the query (``bench/_wrk_post.lua``); requests per second and
wrk's p50/p99 latency. Each query is checked once per set-up first (no ``errors``).

**Fan-out.** ``--subscribers`` WebSocket clients (graphql-transport-ws) subscribe to
``paymentUpdated { id status }``: all on the one process, then spread evenly over the two
processes. After a warm-up (every subscriber has seen an event), ``--events`` signed
``charge.succeeded`` webhooks are posted one every ``--interval-ms``, in turn to each instance of the
set-up; for every (event, subscriber) the time from just before the POST to the subscriber reading
the event: p50, p90, p99 and max, over N x E deliveries; none may be lost or repeated.

The machine is shared (2 CPUs here, and the load generator, the services and Redis run on them
too): compare set-ups within one run, not with other runs. Results go to
``bench/results/instances-<UTC timestamp>.json``; the children's stderr to ``.log`` files beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aiohttp
import httpx
import redis
from _children import (
    BENCH_DIR,
    RESULTS_DIR,
    BenchError,
    Child,
    _die_with_parent,
    machine_info,
    number,
    percentile,
    sigterm_interrupts,
    write_json,
)
from standardwebhooks.webhooks import Webhook

from bff_chinook.demo.payments import signed_headers

SECRET: Final = "whsec_" + base64.b64encode(b"bench: redis fan-out secret 32 B").decode()
QUERIES: Final = {
    "genres": "{ genres { name } }",
    "nested-customer": 'query { customer(id: "1") { invoices { lines { track { name album { title '
    "artist { name } } } } } } }",
}
SUBSCRIPTION: Final = {"query": "subscription { paymentUpdated { id status } }"}
WARM_UP_S: Final = 3.0
CONNECT_CONCURRENCY: Final = 50
PHASE_TIMEOUT_S: Final = 300.0


# Children -----------------------------------------------------------------------------------------


class RedisChild:
    """redis-server on a free port of 127.0.0.1, without persistence, stopped on the way out."""

    def __init__(self, log: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.log = log
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise BenchError("redis-server is not installed (apt-get install redis-server)")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--logfile", str(self.log)]
        self._proc = subprocess.Popen(args, start_new_session=True, preexec_fn=_die_with_parent)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise BenchError("redis-server did not start") from None
                time.sleep(0.05)
        client.close()

    def info(self) -> dict[str, Any]:
        client = redis.Redis.from_url(self.url)
        try:
            server = client.info("server")
            memory = client.info("memory")
            return {
                "redis_version": server["redis_version"],
                "used_memory_human": memory["used_memory_human"],
            }
        finally:
            client.close()

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
            self._proc = None


@dataclass
class Setup:
    """A BFF set-up: its name and the base URLs of its instances (one port per instance)."""

    name: str
    ports: list[int]
    children: list[Child] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]


def start_bff(name: str, env: dict[str, str], stamp: str, *, workers: int = 1) -> tuple[Child, int]:
    argv = [sys.executable, "-m", "bff.cli", "serve", "--host", "127.0.0.1", "--port", "0"]
    if workers > 1:
        argv += ["--workers", str(workers)]
    child = Child(f"bff {name}", argv, env, RESULTS_DIR / f"instances-{stamp}.{name}.log")
    line = child.start()
    if workers > 1:  # "workers: 2 processes on port P (pids ...)"
        return child, int(line.split(" on port ")[1].split()[0])
    if not line.startswith("GraphiQL: "):
        child.stop()
        raise BenchError(f"bff {name} printed {line!r}")
    return child, int(line.rsplit(":", 1)[1].split("/")[0])


@contextlib.contextmanager
def running(stamp: str) -> Iterator[tuple[RedisChild, list[Setup]]]:
    """Redis, the demo services and the three set-ups; all stopped on the way out."""
    started: list[Child] = []
    store = RedisChild(RESULTS_DIR / f"instances-{stamp}.redis-server.log")
    try:
        store.start()
        services = Child(
            "demo services",
            [sys.executable, str(BENCH_DIR / "_services.py")],
            dict(os.environ),
            RESULTS_DIR / f"instances-{stamp}.services.log",
        )
        started.append(services)
        urls: dict[str, str] = json.loads(services.start())
        base = {k: v for k, v in os.environ.items() if not k.startswith("BFF_")}
        base |= {f"BFF_SERVICE_{name.upper()}_URL": url for name, url in urls.items()}
        base |= {f"BFF_SERVICE_{name.upper()}_CACHE_TTL_MS": "60000" for name in urls}
        base |= {"BFF_REDIS_URL": store.url, "BFF_WEBHOOK_SECRETS": SECRET, "BFF_LOG_LEVEL": "WARNING"}
        setups = []
        for name, instances, workers in (("1 process", 1, 1), ("2 processes", 2, 1), ("2 workers", 1, 2)):
            env = base | {"BFF_REDIS_PREFIX": f"bench-{name.replace(' ', '-')}"}
            setup = Setup(name, [])
            for n in range(instances):
                child, port = start_bff(f"{name.replace(' ', '-')}-{n}", env, stamp, workers=workers)
                started.append(child)
                setup.children.append(child)
                setup.ports.append(port)
            setups.append(setup)
        yield store, setups
    finally:
        for child in reversed(started):
            child.stop()
            if child.log.exists() and not child.log.stat().st_size:
                child.log.unlink()
        store.stop()


# Throughput ---------------------------------------------------------------------------------------


def wrk(ports: list[int], body: str, duration_s: float, connections: int) -> dict[str, Any]:
    """One wrk run (two threads over ``ports``); its figures."""
    binary = shutil.which("wrk")
    if binary is None:
        raise BenchError("wrk is not installed (apt-get install wrk)")
    env = dict(os.environ, BENCH_PORTS=",".join(map(str, ports)), BENCH_BODY=body)
    argv = [binary, "-t2", f"-c{connections}", f"-d{duration_s:g}s", "--timeout", "10s"]
    argv += ["-s", str(BENCH_DIR / "_wrk_post.lua"), f"http://127.0.0.1:{ports[0]}/graphql"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration_s + 60)
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not last.startswith("{"):
        raise BenchError(f"wrk failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    figures: dict[str, Any] = json.loads(last)
    return figures


def check(setup: Setup, body: str) -> None:
    for url in setup.urls:
        answer = httpx.post(
            f"{url}/graphql", content=body, headers={"Content-Type": "application/json"}
        ).json()
        if "errors" in answer or not answer.get("data"):
            raise BenchError(f"{setup.name} answered {json.dumps(answer)[:300]}")


@dataclass
class ThroughputRow:
    query: str
    setup: str
    round: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def throughput(setups: list[Setup], args: argparse.Namespace) -> list[ThroughputRow]:
    rows: list[ThroughputRow] = []
    for query, text in QUERIES.items():
        body = json.dumps({"query": text})
        for setup in setups:
            check(setup, body)
        for round_ in range(1, args.rounds + 1):
            for setup in setups:
                print(
                    f"  {query:<16} {setup.name:<12} round {round_} ...", end="", file=sys.stderr, flush=True
                )
                wrk(setup.ports * (2 // len(setup.ports)), body, WARM_UP_S, args.connections)
                figures = wrk(setup.ports * (2 // len(setup.ports)), body, args.duration, args.connections)
                rps = figures["requests"] / (figures["duration_us"] / 1e6)
                rows.append(
                    ThroughputRow(
                        query,
                        setup.name,
                        round_,
                        figures["requests"],
                        round(rps, 1),
                        round(figures["p50_us"] / 1000, 2),
                        round(figures["p99_us"] / 1000, 2),
                        figures["socket_errors"] + figures["non_2xx"],
                    )
                )
                print(f" {rps:.0f}/s", file=sys.stderr, flush=True)
    return rows


# Fan-out ------------------------------------------------------------------------------------------


@dataclass
class Listener:
    ws: aiohttp.ClientWebSocketResponse
    arrivals: dict[int, list[float]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def listen(self) -> None:
        async for message in self.ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            frame = json.loads(message.data)
            if frame.get("type") == "next":
                charge_id = int(frame["payload"]["data"]["paymentUpdated"]["id"])
                self.arrivals.setdefault(charge_id, []).append(time.monotonic())
                self.changed.set()


@dataclass
class FanOutRow:
    setup: str
    instances: int
    subscribers: int
    events: int
    deliveries: int
    lost: int
    repeated: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


async def fan_out(setup: Setup, args: argparse.Namespace, first_id: int) -> FanOutRow:
    signer = Webhook(SECRET)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session, httpx.AsyncClient(timeout=30) as http:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def connect(index: int) -> Listener:
            url = setup.urls[index % len(setup.urls)].replace("http://", "ws://") + "/graphql"
            async with gate:
                ws = await session.ws_connect(url, protocols=["graphql-transport-ws"])
                await ws.send_json({"type": "connection_init"})
                if (await ws.receive_json(timeout=30)).get("type") != "connection_ack":
                    raise BenchError("no connection_ack")
                await ws.send_json({"id": "1", "type": "subscribe", "payload": SUBSCRIPTION})
                return Listener(ws)

        listeners = await asyncio.gather(*(connect(i) for i in range(args.subscribers)))
        tasks = [asyncio.ensure_future(listener.listen()) for listener in listeners]

        async def publish(charge_id: int, instance: int) -> float:
            charge = {
                "id": charge_id,
                "invoiceId": 1,
                "amount": 0.99,
                "currency": "USD",
                "status": "SUCCEEDED",
            }
            body = json.dumps({"type": "charge.succeeded", "data": charge})
            headers = signed_headers(signer, f"msg_bench_{charge_id}", body, datetime.now(UTC))
            sent = time.monotonic()
            url = setup.urls[instance % len(setup.urls)] + "/webhooks/payments"
            response = await http.post(url, content=body, headers=headers)
            if response.status_code != 202:
                raise BenchError(f"webhook refused: {response.status_code} {response.text}")
            return sent

        async with asyncio.timeout(PHASE_TIMEOUT_S):
            probe = first_id + 1_000_000
            while not all(listener.arrivals for listener in listeners):
                await publish(probe, probe)
                probe += 1
                await asyncio.sleep(0.2)
            for listener in listeners:
                listener.arrivals.clear()
            sent: dict[int, float] = {}
            ids = range(first_id, first_id + args.events)
            for n, charge_id in enumerate(ids):
                sent[charge_id] = await publish(charge_id, n)
                await asyncio.sleep(args.interval_ms / 1000)
            settle = time.monotonic() + 10
            while time.monotonic() < settle and not all(  # noqa: ASYNC110 - 1,000 sockets' state
                all(i in listener.arrivals for i in ids) for listener in listeners
            ):
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
        latencies = [
            (listener.arrivals[i][0] - sent[i]) * 1000
            for listener in listeners
            for i in ids
            if i in listener.arrivals
        ]
        lost = sum(1 for listener in listeners for i in ids if i not in listener.arrivals)
        repeated = sum(len(times) - 1 for listener in listeners for times in listener.arrivals.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(listener.ws.close() for listener in listeners), return_exceptions=True)
    return FanOutRow(
        setup.name,
        len(setup.urls),
        args.subscribers,
        args.events,
        len(latencies),
        lost,
        repeated,
        round(statistics.median(latencies), 1),
        round(percentile(latencies, 90), 1),
        round(percentile(latencies, 99), 1),
        round(max(latencies), 1),
    )


# Report -------------------------------------------------------------------------------------------


def table(rows: list[ThroughputRow], fans: list[FanOutRow]) -> str:
    """The throughput rows (median over rounds, ratio to the first set-up) and the fan-out rows."""
    head = "query            set-up        rounds   req/s  (each round)      p50 ms   p99 ms  errors  vs 1"
    lines = [head]
    base: dict[str, float] = {}
    for query, setup in dict.fromkeys((row.query, row.setup) for row in rows):
        mine = [row for row in rows if (row.query, row.setup) == (query, setup)]
        rps = statistics.median(row.rps for row in mine)
        base.setdefault(query, rps)
        each = " ".join(number(row.rps) for row in mine)
        p50 = number(statistics.median(r.p50_ms for r in mine))
        p99 = number(statistics.median(r.p99_ms for r in mine))
        errors = sum(r.errors for r in mine)
        lines.append(
            f"{query:<16} {setup:<12} {len(mine):>6} {number(rps):>7}  ({each:<16}) {p50:>7} {p99:>8}"
            f" {errors:>7}  x{rps / base[query]:.2f}"
        )
    if fans:
        lines.append("")
        lines.append(
            "fan-out       instances  subscribers  events  deliveries  lost  repeated"
            "  p50 ms  p90 ms  p99 ms  max ms"
        )
        for fan in fans:
            lines.append(
                f"{fan.setup:<13} {fan.instances:>9} {fan.subscribers:>12} {fan.events:>7}"
                f" {fan.deliveries:>11} {fan.lost:>5} {fan.repeated:>9} {number(fan.p50_ms):>7}"
                f" {number(fan.p90_ms):>7} {number(fan.p99_ms):>7} {number(fan.max_ms):>7}"
            )
    return "\n".join(lines)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per run (default 10)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per query and set-up (default 2)")
    parser.add_argument("--subscribers", type=int, default=1_000, help="fan-out subscribers (default 1000)")
    parser.add_argument("--events", type=int, default=50, help="fan-out events (default 50)")
    parser.add_argument(
        "--interval-ms", type=float, default=200.0, help="between fan-out events (default 200)"
    )
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-fan-out", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    sigterm_interrupts()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = args.subscribers + 512
    if soft < needed and (hard == resource.RLIM_INFINITY or hard >= needed):
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(exist_ok=True)
    started = time.monotonic()
    machine = machine_info()
    rows: list[ThroughputRow] = []
    fans: list[FanOutRow] = []
    try:
        with running(stamp) as (store, setups):
            if not args.skip_throughput:
                print("throughput:", file=sys.stderr)
                rows = throughput(setups, args)
            if not args.skip_fan_out:
                for n, setup in enumerate(setups[:2]):
                    print(f"fan-out over {setup.name} ...", file=sys.stderr, flush=True)
                    fans.append(asyncio.run(fan_out(setup, args, first_id=(n + 1) * 10_000)))
            machine["redis"] = store.info()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    machine["load_average_after"] = os.getloadavg()
    settings = {key: value for key, value in vars(args).items()} | {
        "queries": QUERIES,
        "warm_up_s": WARM_UP_S,
    }
    path = RESULTS_DIR / f"instances-{stamp}.json"
    write_json(path, [*rows, *fans], settings, machine)
    print(table(rows, fans))
    print(f"{time.monotonic() - started:.0f} s in all; {os.cpu_count()} CPUs; figures: {path}")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
