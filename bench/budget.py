"""How one heavy operation treats everyone else: /healthz latency and memory while the heaviest
operations the cost limit allows run, with the runtime budget and without its item limit.

Two BFFs over the same demo services, one at a time:

- ``budgeted``: the defaults (``BFF_MAX_ITEMS=50000``): the heavy query is refused by the prefetch's
  count of the items below the playlist's tracks, before they are completed;
- ``slices-only``: ``BFF_MAX_ITEMS=100000000``: the heavy query runs until its 10 s deadline; only the
  event-loop slices (``bff/operation/budget.py``) stand between it and the other requests.

For each: /healthz latency idle (p50, p99, max), then under ``--concurrency`` heavy queries in a loop
for ``--duration`` seconds, polled every 10 ms; RSS before, at the peak, and ``--settle`` seconds after
the load stops (``gc`` has run by then). The heavy query is the one a hostile client found
(``Playlist.tracks`` priced at 500, 3,290 tracks on playlist 1); before the budget it took 9 s of CPU
and three at once blocked /healthz for 25 s.

    python bench/budget.py [--duration 20] [--concurrency 3] [--settle 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import psutil
from _children import (
    RESULTS_DIR,
    BenchError,
    Bff,
    children,
    machine_info,
    number,
    percentile,
    report,
    reported_failures,
    sigterm_interrupts,
)

HEAVY = '{ playlist(id: "1") { tracks { album { tracks { album { artist { albums { title } } } } } } } }'
POLL_S = 0.01
IDLE_SAMPLES = 200


@dataclass
class Row:
    """One BFF's figures (milliseconds and megabytes)."""

    bff: str
    idle_p50_ms: float
    idle_p99_ms: float
    load_p50_ms: float
    load_p99_ms: float
    load_max_ms: float
    heavy_done: int
    heavy_errors: str
    rss_before_mb: float
    rss_peak_mb: float
    rss_after_mb: float
    load_average: float


def _plan(service_urls: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    urls = {f"BFF_SERVICE_{name.upper()}_URL": url for name, url in service_urls.items()}
    return [("budgeted", dict(urls)), ("slices-only", {**urls, "BFF_MAX_ITEMS": "100000000"})]


def _rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 1e6


async def _poll(http: httpx.AsyncClient, url: str, samples: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        (await http.get(url)).raise_for_status()
        elapsed = time.perf_counter() - started
        samples.append(elapsed * 1000)
        await asyncio.sleep(max(0.0, POLL_S - elapsed))


async def _heavy_loop(http: httpx.AsyncClient, url: str, until: float, codes: set[str]) -> int:
    done = 0
    while time.monotonic() < until:
        body: dict[str, Any] = (await http.post(url, json={"query": HEAVY})).json()
        if "data" not in body:
            raise BenchError(f"the heavy query was not run: {str(body)[:300]}")
        codes.update(e["extensions"]["code"] for e in body.get("errors", []))
        done += 1
    return done


async def _measure(bff: Bff, args: argparse.Namespace) -> Row:
    healthz = bff.url.replace("/graphql", "/healthz")
    pid = bff.child.pid
    async with httpx.AsyncClient(timeout=120.0) as http:
        await http.post(bff.url, json={"query": HEAVY})  # warm up: imports, caches
        idle: list[float] = []
        for _ in range(IDLE_SAMPLES):
            started = time.perf_counter()
            (await http.get(healthz)).raise_for_status()
            idle.append((time.perf_counter() - started) * 1000)
        rss_before = _rss_mb(pid)
        loaded: list[float] = []
        stop = asyncio.Event()
        poller = asyncio.ensure_future(_poll(http, healthz, loaded, stop))
        peak = rss_before
        codes: set[str] = set()
        until = time.monotonic() + args.duration
        heavy = [
            asyncio.ensure_future(_heavy_loop(http, bff.url, until, codes)) for _ in range(args.concurrency)
        ]
        while not all(task.done() for task in heavy):
            peak = max(peak, _rss_mb(pid))
            await asyncio.sleep(0.2)
        done = sum(task.result() for task in heavy)
        stop.set()
        await poller
        await asyncio.sleep(args.settle)
        rss_after = _rss_mb(pid)
    return Row(
        bff=bff.name,
        idle_p50_ms=percentile(idle, 50),
        idle_p99_ms=percentile(idle, 99),
        load_p50_ms=percentile(loaded, 50),
        load_p99_ms=percentile(loaded, 99),
        load_max_ms=max(loaded, default=float("nan")),
        heavy_done=done,
        heavy_errors=",".join(sorted(codes)) or "-",
        rss_before_mb=rss_before,
        rss_peak_mb=peak,
        rss_after_mb=rss_after,
        load_average=os.getloadavg()[0],
    )


def format_table(rows: list[Row]) -> str:
    """The figures as a Markdown table."""
    lines = [
        "| bff | /healthz idle p50 / p99 | under load p50 / p99 / max | heavy ops done | their errors "
        "| RSS before / peak / after (MB) | load avg |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.bff} | {number(r.idle_p50_ms)} / {number(r.idle_p99_ms)} ms "
            f"| {number(r.load_p50_ms)} / {number(r.load_p99_ms)} / {number(r.load_max_ms)} ms "
            f"| {r.heavy_done} | {r.heavy_errors} "
            f"| {r.rss_before_mb:.0f} / {r.rss_peak_mb:.0f} / {r.rss_after_mb:.0f} | {r.load_average:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of heavy load per BFF")
    parser.add_argument("--concurrency", type=int, default=3, help="heavy queries at once")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds after the load before RSS")
    args = parser.parse_args(argv)
    sigterm_interrupts()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    machine, began = machine_info(), time.monotonic()
    with reported_failures(), children("budget", stamp, _plan) as (_services, bffs):
        rows = [asyncio.run(_measure(bff, args)) for bff in bffs]
    elapsed = time.monotonic() - began
    settings = {"duration_s": args.duration, "concurrency": args.concurrency, "settle_s": args.settle}
    report(RESULTS_DIR / f"budget-{stamp}.json", rows, settings, machine, format_table(rows), elapsed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
