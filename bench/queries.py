"""What DataLoader batching buys: the BFF with batching on and off, side by side, over the same services.

Run ``python bench/queries.py [--runs N] [--concurrency C] [--duration S]`` from the repository root.
``--compare telemetry`` runs the same stages on another pair, both batched: "telemetry-off"
(``BFF_METRICS=false``, logs at WARNING: no access lines) and "telemetry-on" (metrics collected,
JSON logs at INFO: one access line per operation, written to its ``.log`` file); their ratios are
the overhead of metrics and logging. Tracing stays off in both (``OTEL_TRACES_EXPORTER`` unset).
It starts three child processes on 127.0.0.1 -- the four demo REST services (``bench/_services.py``)
and two ``bff serve``: "batched" (default batching) and "unbatched" (``MAX_BATCH_SIZE=1`` for every
service: one downstream request per key, still concurrent) -- and drives them from this process with
one keep-alive ``httpx.AsyncClient``. For each of three queries it

1. checks the answer of each BFF: no ``errors``, and the same ``data`` from both;
2. counts the downstream requests of that run (every service's ``/_stats``, reset before the run);
3. warms up (10 runs), then times ``--runs`` sequential runs per BFF, the BFFs taking turns run by
   run so that both meet the same noise: p50 and p99 in ms;
4. per BFF, ``--concurrency`` closed-loop workers start runs for ``--duration`` s: queries per second
   (answers divided by the time until the last answer).

How to read it: ``downstream`` is exact and repeatable; it is what batching is for. The timings come
from one shared, noisy 2-core machine on which the BFFs, the services and this load generator compete
for the CPU: compare the two rows of one run (the ``ratio`` lines), never figures across runs.
``tracks-walk`` is the control: it has no nested lists, so both BFFs make the same 36 requests and its
ratios show the noise. A run of it walks all 3,503 tracks, 36 pages of 100: its p50/p99 are per walk,
its ``qps`` counts pages (GraphQL queries), and the notes add walks per second and per-page times.

Bounds: every loop stops by count and by time. Warm-up gets ``STAGE_BUDGET_S`` per BFF; timing gets
``--batched-budget`` (default 150 s) for the batched BFF, enough for its 200 runs of every query, and
``STAGE_BUDGET_S`` for the unbatched baseline. No run starts that would likely end past its budget,
so the baseline gets fewer than ``--runs`` runs (the ``runs`` column; p99 is starred below 200). Runs
in flight when a throughput window closes get ``DRAIN_BUDGET_S`` more; after that they are abandoned
and that BFF restarted, so that its leftover work does not load the next stage. With the defaults the
whole run takes about 5 minutes.

Both BFFs get the same extra settings where the BFF has them (``HEADROOM``): no entity cache, so the
counts measure batching alone, and limits that would otherwise reject the unbatched fan-out. Figures,
settings, machine and commit go to ``bench/results/queries-<UTC timestamp>.json``, the children's
stderr to ``.log`` files beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import httpx
from _children import (
    RESULTS_DIR,
    BenchError,
    Bff,
    alternating,
    children,
    machine_info,
    number,
    percentile,
    ratio,
    report,
    reported_failures,
    sigterm_interrupts,
    stage,
)

NESTED_CUSTOMER: Final = (
    '{ customer(id: "1") { invoices { lines { track { album { artist { name } } } } } } }'
)
ALL_CUSTOMERS: Final = (
    "{ customers(first: 59) { edges { node {"
    " invoices { total lines { track { name genre { name } } } } } } } }"
)
TRACKS_PAGE: Final = (
    "query Tracks($after: String) { tracks(first: 100, after: $after) {"
    " pageInfo { hasNextPage endCursor } edges { node { id name } } } }"
)
TRACK_COUNT: Final = 3503
WALK_PAGES: Final = math.ceil(TRACK_COUNT / 100)

MIN_REPORT_RUNS: Final = 200
"""Fewer timed runs than this and p99 is rough (starred in the table)."""
WARMUP_RUNS: Final = 10
"""Warm-up runs per BFF and query, the checked run included (within half of ``STAGE_BUDGET_S``)."""
STAGE_BUDGET_S: Final = 10.0
"""Seconds of timed runs per BFF and query; a run that would likely end past it is not started."""
DRAIN_BUDGET_S: Final = 10.0
"""Most seconds to wait for the queries in flight at the end of a throughput window."""
REQUEST_TIMEOUT_S: Final = 60.0


HEADROOM: Final = {"OPERATION_TIMEOUT_MS": "600000"}
"""Settings both BFFs get, where the BFF has them, so that limits meant for production do not reject
the unbatched fan-out (2,000+ concurrent calls, seconds long) and both BFFs run alike."""
SERVICE_HEADROOM: Final = {"MAX_QUEUE": "1000000", "CACHE_TTL_MS": "0"}
"""Per service: an unbounded bulkhead queue, and no entity cache (the counts must measure batching)."""


def bff_settings(service_urls: dict[str, str], batch_size: int | None) -> dict[str, str]:
    """The ``BFF_*`` variables of one BFF; headroom only for settings this BFF knows (others exit 2)."""
    from bff.settings import ServiceSettings, Settings

    known, known_service = set(Settings.model_fields), set(ServiceSettings.model_fields)
    env = {"BFF_LOG_LEVEL": "WARNING"}
    env.update({f"BFF_{k}": v for k, v in HEADROOM.items() if k.lower() in known})
    for service, url in service_urls.items():
        prefix = f"BFF_SERVICE_{service.upper()}_"
        env[prefix + "URL"] = url
        env.update({prefix + k: v for k, v in SERVICE_HEADROOM.items() if k.lower() in known_service})
        if batch_size is not None:
            env[prefix + "MAX_BATCH_SIZE"] = str(batch_size)
    return env


# One run of a query ------------------------------------------------------------------------------


@dataclass
class Run:
    """What one run returned: its ``data``, and for each GraphQL query of it the seconds it took and
    when it ended (``time.perf_counter``)."""

    data: Any
    query_seconds: list[float]
    query_ends: list[float]


Runner = Callable[[httpx.AsyncClient, str], Awaitable[Run]]
"""Run a query once against a GraphQL URL."""


class QueryFailed(BenchError):
    """The BFF answered with GraphQL ``errors`` or without ``data``."""


async def _post(http: httpx.AsyncClient, url: str, query: str, variables: dict[str, Any]) -> Any:
    response = await http.post(url, json={"query": query, "variables": variables})
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200 or body.get("errors") or body.get("data") is None:
        detail = body.get("errors") or response.text[:300]
        raise QueryFailed(f"{url} answered {response.status_code}: {json.dumps(detail)[:500]}")
    return body["data"]


def single(query: str) -> Runner:
    """A runner for a query without variables."""

    async def run(http: httpx.AsyncClient, url: str) -> Run:
        start = time.perf_counter()
        data = await _post(http, url, query, {})
        end = time.perf_counter()
        return Run(data, [end - start], [end])

    return run


async def walk_tracks(http: httpx.AsyncClient, url: str) -> Run:
    """Follow ``endCursor`` through every track, one page of 100 after the other."""
    nodes: list[Any] = []
    run = Run(nodes, [], [])
    after: str | None = None
    for _ in range(WALK_PAGES + 1):  # one spare page: a walk that never ends is an error, not a hang
        start = time.perf_counter()
        page = (await _post(http, url, TRACKS_PAGE, {"after": after}))["tracks"]
        run.query_ends.append(end := time.perf_counter())
        run.query_seconds.append(end - start)
        nodes.extend(edge["node"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            return run
        after = page["pageInfo"]["endCursor"]
    raise BenchError(f"the walk of {url} did not end after {WALK_PAGES + 1} pages")


QUERIES: Final[dict[str, Runner]] = {
    "nested-customer": single(NESTED_CUSTOMER),
    "all-customers": single(ALL_CUSTOMERS),
    "tracks-walk": walk_tracks,
}


def _check_shape(query: str, data: Any) -> None:
    if query == "tracks-walk" and len({node["id"] for node in data}) != TRACK_COUNT:
        raise BenchError(f"the walk found {len(data)} tracks, not {TRACK_COUNT}")
    if query == "all-customers" and len(data["customers"]["edges"]) != 59:
        raise BenchError("all-customers did not return 59 customers")


# Stages -------------------------------------------------------------------------------------------


@dataclass
class Row:
    """The figures of one query on one BFF."""

    query: str
    bff: str
    downstream: int = 0
    downstream_by_service: dict[str, int] = field(default_factory=dict)
    downstream_by_path: dict[str, int] = field(default_factory=dict)
    warmup_runs: int = 0
    runs: int = 0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    cpu_ms_per_run: float = math.nan
    """CPU time the BFF process spent per timed run (``/proc``, 10 ms ticks averaged over the runs):
    unlike wall-clock times, hardly moved by other processes on the machine."""
    mean_ms: float = math.nan
    max_ms: float = math.nan
    query_p50_ms: float = math.nan
    query_p99_ms: float = math.nan
    samples_ms: list[float] = field(default_factory=list)
    load_s: float = 0.0
    queries: int = 0
    completed_runs: int = 0
    failed: int = 0
    qps: float = 0.0
    runs_per_s: float = 0.0
    in_flight_at_end: int = 0
    bff_restarted: bool = False


async def count_downstream(
    http: httpx.AsyncClient, service_urls: dict[str, str], runner: Runner, url: str, row: Row
) -> Any:
    """Run once between a reset and a read of every service's ``/_stats``; return the run's data."""
    for base in service_urls.values():
        (await http.delete(f"{base}/_stats")).raise_for_status()
    run = await runner(http, url)
    for service, base in service_urls.items():
        response = await http.get(f"{base}/_stats")
        response.raise_for_status()
        stats = response.json()
        row.downstream_by_service[service] = stats["total"]
        row.downstream_by_path.update({f"{service} {key}": n for key, n in stats["requests"].items()})
    row.downstream = sum(row.downstream_by_service.values())
    return run.data


async def throughput(
    http: httpx.AsyncClient, runner: Runner, bff: Bff, args: argparse.Namespace, row: Row
) -> None:
    """``--concurrency`` closed-loop workers start runs for ``--duration`` s.

    Throughput is what was answered divided by the time until the last answer: the runs in flight
    when the window closes may finish within ``DRAIN_BUDGET_S``, and count; the ones still running
    then are abandoned (not counted, and the BFF is restarted so that their work stops).
    """
    start = time.perf_counter()
    deadline = start + args.duration
    queries = completed = failed = 0
    last = start

    async def worker() -> None:
        nonlocal queries, completed, failed, last
        while time.perf_counter() < deadline:
            try:
                run = await runner(http, bff.url)
            except QueryFailed:  # e.g. a timeout under load: counted, not fatal
                failed += 1
                continue
            queries += len(run.query_ends)
            completed += 1
            last = max(last, run.query_ends[-1])

    tasks = [asyncio.create_task(worker()) for _ in range(args.concurrency)]
    await asyncio.wait(tasks, timeout=args.duration)
    row.in_flight_at_end = sum(not task.done() for task in tasks)
    _, pending = await asyncio.wait(tasks, timeout=DRAIN_BUDGET_S)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in tasks:
        if not task.cancelled():
            task.result()  # a transport error fails the benchmark
    if pending:  # its abandoned work would still load the CPU: start afresh
        last = time.perf_counter()
        bff.restart()
        row.bff_restarted = True
    row.load_s = round(last - start, 3)
    row.queries, row.completed_runs, row.failed = queries, completed, failed
    row.qps, row.runs_per_s = queries / row.load_s, completed / row.load_s


async def bench_query(
    http: httpx.AsyncClient,
    query: str,
    bffs: list[Bff],
    service_urls: dict[str, str],
    args: argparse.Namespace,
) -> list[Row]:
    """All stages of one query on every BFF; the data must be the same from every BFF."""
    runner, reference = QUERIES[query], None
    rows = [Row(query, bff.name) for bff in bffs]
    warmup_budgets = []
    for bff, row in zip(bffs, rows, strict=True):
        with stage(query, bff.name, "check and downstream count"):
            start = time.perf_counter()
            data = await count_downstream(http, service_urls, runner, bff.url, row)
            warmup_budgets.append(STAGE_BUDGET_S / 2 - (time.perf_counter() - start))
            _check_shape(query, data)
            if reference is None:
                reference = data
            elif data != reference:
                raise BenchError(f"{bff.name} answered other data than {bffs[0].name}")
    urls = [bff.url for bff in bffs]
    with stage(query, "all", "warm-up"):  # the checked run was the first one
        warmed = await alternating(
            lambda i: runner(http, urls[i]), len(urls), WARMUP_RUNS - 1, warmup_budgets
        )
        for row, runs in zip(rows, warmed, strict=True):
            row.warmup_runs = 1 + len(runs)
    with stage(query, "all", "latency"):
        # The batched BFF is the product: it gets time for all --runs; the unbatched baseline only shows
        # the gap. Compared for telemetry, both are batched and both get the time.
        budgets = [STAGE_BUDGET_S if bff.name == "unbatched" else args.batched_budget for bff in bffs]
        cpu_before = [bff.child.cpu_seconds() for bff in bffs]
        timed = await alternating(lambda i: runner(http, urls[i]), len(urls), args.runs, budgets)
        cpu_after = [bff.child.cpu_seconds() for bff in bffs]
    for row, runs, before, after in zip(rows, timed, cpu_before, cpu_after, strict=True):
        # The BFFs take turns, so each one's CPU time over the stage is its own runs' work alone.
        row.cpu_ms_per_run = (after - before) * 1000 / len(runs)
        per_run = [sum(run.query_seconds) * 1000 for run in runs]
        per_query = [seconds * 1000 for run in runs for seconds in run.query_seconds]
        row.runs, row.mean_ms, row.max_ms = len(runs), sum(per_run) / len(per_run), max(per_run)
        row.p50_ms, row.p99_ms = percentile(per_run, 50), percentile(per_run, 99)
        row.samples_ms = [round(ms, 2) for ms in per_run]
        row.query_p50_ms, row.query_p99_ms = percentile(per_query, 50), percentile(per_query, 99)
    for bff, row in zip(bffs, rows, strict=True):
        with stage(query, bff.name, "throughput"):
            await throughput(http, runner, bff, args, row)
    return rows


# Report -------------------------------------------------------------------------------------------


def _qps_bound(row: Row) -> float:
    """With none answered: all in flight took longer than the window, so qps < in flight / window."""
    return max(row.in_flight_at_end, 1) / row.load_s


def _qps(row: Row) -> str:
    return number(row.qps) if row.queries else f"<{number(_qps_bound(row))}"


def _qps_ratio(unbatched: Row, batched: Row) -> str:
    if unbatched.queries or not batched.qps:
        return ratio(unbatched.qps, batched.qps)
    return f"x<{number(_qps_bound(unbatched) / batched.qps)}"


def _change(new: float, old: float) -> str:
    """``new`` against ``old`` in percent (``+3.1%``): ratios print too coarsely for small overheads."""
    return f"{(new / old - 1) * 100:+.1f}%" if old and not math.isnan(new) and not math.isnan(old) else "-"


def format_table(rows: list[Row]) -> str:
    """The table printed at the end: one line per query and BFF, then each query's ratios."""
    header = (
        f"{'query':<16} {'bff':<13} {'downstream':>10} {'runs':>5} {'p50 ms':>8} {'p99 ms':>9}"
        f" {'cpu ms':>7} {'qps':>8}"
    )
    lines = [header + "  downstream by service"]
    for query in QUERIES:
        pair = [row for row in rows if row.query == query]
        for row in pair:
            star = "*" if row.runs < MIN_REPORT_RUNS else " "
            services = " ".join(f"{s}={n}" for s, n in row.downstream_by_service.items() if n)
            lines.append(
                f"{row.query:<16} {row.bff:<13} {row.downstream:>10} {row.runs:>5} {row.p50_ms:>8.1f}"
                f" {row.p99_ms:>8.1f}{star} {row.cpu_ms_per_run:>7.1f} {_qps(row):>8}  {services}"
            )
        if len(pair) == 2:
            first, second = pair  # batched/unbatched, or telemetry-off/-on
            downstream = ratio(second.downstream, first.downstream)
            lines.append(
                f"  ratio ({second.bff}/{first.bff}): downstream {downstream},"
                f" p50 {ratio(second.p50_ms, first.p50_ms)}, p99 {ratio(second.p99_ms, first.p99_ms)},"
                f" cpu {ratio(second.cpu_ms_per_run, first.cpu_ms_per_run)}, qps {_qps_ratio(second, first)}"
            )
            lines.append(
                f"  change ({second.bff} vs {first.bff}): p50 {_change(second.p50_ms, first.p50_ms)},"
                f" cpu per run {_change(second.cpu_ms_per_run, first.cpu_ms_per_run)},"
                f" qps {_change(second.qps, first.qps)}"
            )
        for row in pair:
            if query == "tracks-walk":
                lines.append(
                    f"  {row.bff}: {row.runs_per_s:.2f} walks/s; one page p50 {row.query_p50_ms:.1f} ms,"
                    f" p99 {row.query_p99_ms:.1f} ms"
                )
            if row.failed:
                lines.append(f"  {row.bff}: {row.failed} runs answered errors under load (not counted)")
            if row.bff_restarted:
                lines.append(
                    f"  {row.bff}: {row.queries} queries answered under load in {row.load_s:.1f} s;"
                    f" {row.in_flight_at_end} in flight when the window closed,"
                    f" abandoned {DRAIN_BUDGET_S:g} s later: BFF restarted"
                )
    lines.append(
        f"* p99 from fewer than {MIN_REPORT_RUNS} runs (each loop stops starting runs after"
        f" {STAGE_BUDGET_S:g} s): rough"
    )
    return "\n".join(lines)


# Main ---------------------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--runs", type=int, default=MIN_REPORT_RUNS, help="timed sequential runs (default 200)"
    )
    parser.add_argument(
        "--batched-budget",
        type=float,
        default=150.0,
        help="seconds the batched BFF may spend on its timed runs per query (default 150)",
    )
    parser.add_argument(
        "--compare",
        choices=sorted(PLANS),
        default="batching",
        help="batching: batched vs unbatched (default); telemetry: metrics and logging off vs on",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="throughput workers (default 8)")
    parser.add_argument("--duration", type=float, default=5.0, help="throughput window, s (default 5)")
    args = parser.parse_args(argv)
    if args.runs < 1 or not 1 <= args.concurrency <= 64 or not 0.5 <= args.duration <= 60:
        parser.error("need --runs >= 1, 1 <= --concurrency <= 64 and 0.5 <= --duration <= 60")
    return args


def _plan(service_urls: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    """The two BFFs: default batching, and one key per downstream GET."""
    return [(name, bff_settings(service_urls, size)) for name, size in (("batched", None), ("unbatched", 1))]


TELEMETRY_OFF: Final = {"BFF_METRICS": "false"}
"""No metrics; logs stay at WARNING (bff_settings): no access lines."""
TELEMETRY_ON: Final = {"BFF_METRICS": "true", "BFF_LOG_LEVEL": "INFO", "BFF_LOG_FORMAT": "json"}
"""Metrics collected; one JSON access line per operation (to the BFF's stderr, the .log file)."""


def _telemetry_plan(service_urls: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    """Two batched BFFs: metrics and INFO logging off, and on."""
    base = bff_settings(service_urls, None)
    return [("telemetry-off", base | TELEMETRY_OFF), ("telemetry-on", base | TELEMETRY_ON)]


PLANS: Final = {"batching": _plan, "telemetry": _telemetry_plan}


async def _bench(service_urls: dict[str, str], bffs: list[Bff], args: argparse.Namespace) -> list[Row]:
    limits = httpx.Limits(
        max_connections=args.concurrency + 4, max_keepalive_connections=args.concurrency + 4
    )
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, limits=limits, trust_env=False) as http:
        rows: list[Row] = []
        for query in QUERIES:
            rows.extend(await bench_query(http, query, bffs, service_urls, args))
        return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON; returns the exit code."""
    args = _parse(argv)
    sigterm_interrupts()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    machine, began = machine_info(), time.monotonic()
    with reported_failures(), children("queries", stamp, PLANS[args.compare]) as (service_urls, bffs):
        rows = asyncio.run(_bench(service_urls, bffs, args))
        bff_env = {bff.name: {**bff.settings, "restarts": bff.restarts} for bff in bffs}
    elapsed = time.monotonic() - began
    machine["load_average_after"] = os.getloadavg()
    settings = {
        "compare": args.compare,
        "runs": args.runs,
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "warmup_runs": WARMUP_RUNS,
        "stage_budget_s": STAGE_BUDGET_S,
        "drain_budget_s": DRAIN_BUDGET_S,
        "request_timeout_s": REQUEST_TIMEOUT_S,
        "bffs": bff_env,
        "queries": {
            "nested-customer": NESTED_CUSTOMER,
            "all-customers": ALL_CUSTOMERS,
            "tracks-walk": TRACKS_PAGE,
        },
        "elapsed_s": round(elapsed, 1),
    }
    path = RESULTS_DIR / f"queries-{stamp}.json"
    report(path, rows, settings, machine, format_table(rows), elapsed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
