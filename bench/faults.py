"""What the resilience features buy on a bad downstream day: one flaky service, with and without them.

Run ``python bench/faults.py [--runs N] [--budget S] [--uncached]`` from the repository root. It
starts, as child processes on 127.0.0.1 (``bench/_children.py``), the four demo REST services
(``bench/_services.py``) and two ``bff serve`` over them:

- "resilient": the default resilience settings (3 attempts with exponential backoff, circuit breaker
  after 5 consecutive failures, in-flight de-duplication) plus the entity cache with stale-if-error
  for the faulty service only (``CATALOG_CACHE_TTL_MS=2000``, ``CATALOG_STALE_IF_ERROR_MS=600000``);
- "plain": one attempt (``RETRY_ATTEMPTS=1``), a breaker that never opens
  (``BREAKER_THRESHOLD=1000000``) and no entity cache (``CACHE_TTL_MS=0``), for every service;
- with ``--uncached``, a third, "uncached": the resilient one without its cache (retries and breaker
  alone), to tell what the cache buys from what the retries buy.

For each query (``QUERIES``) and scenario -- "no-fault" first, then "faults": the catalog service
answers 503 to 20 % of requests, after a random 0..200 ms delay on every request (``FAULT``, through
``PUT /_faults``) -- it warms up (10 runs per BFF) and times ``--runs`` sequential runs per BFF, the
BFFs taking turns run by run so that all meet the same noise. Per run it records the latency seen by
the client, the GraphQL ``errors`` (with their ``extensions.code``), whether ``data`` is complete (equal
to the answer without faults, checked first: no field nulled by an error), how many stale records the
response declares (``extensions.stale``), and the requests each service served for it (``/_stats``,
read after every run). Per row: p50/p99 latency, error rate, complete rate, stale rate, catalog and
all downstream requests per query; then the ratios plain/other, and for each BFF what the faults
cost it (faults / no-fault).

How to read it: the error, complete and stale rates and the request counts are the point; they move
little between runs. The latencies come from a shared, noisy 2-core machine: compare rows of one run
(the ratio lines), not figures across runs. The faulty service's random source is seeded
(``FAULT["seed"]``), re-seeded before each timed stage, but all BFFs draw from it and the order of
concurrent requests varies, so no two runs are the same.

Bounds: warm-up and timed runs of all stages share ``--budget`` seconds (default 220; 450 with
``--uncached``, whose BFF is the slowest under faults): each stage gets its weight's share
(``STAGE_WEIGHTS``) of what the earlier stages left, and starts no run that would likely end past it;
a stage cut short has fewer than ``--runs`` runs and its p99 is starred. With the defaults the whole
run takes about 3.5 minutes (about 7.5 with ``--uncached``). Figures,
samples, settings, machine and commit go to ``bench/results/faults-<UTC timestamp>.json``, the
children's stderr to ``.log`` files beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
from _children import (
    RESULTS_DIR,
    BenchError,
    Bff,
    alternating,
    children,
    machine_info,
    percentile,
    ratio,
    report,
    reported_failures,
    sigterm_interrupts,
    stage,
)

QUERIES: Final = {
    "nested-customer": (
        '{ customer(id: "1") { invoices { lines { track { album { artist { name } } } } } } }'
    ),
    "ten-customers": "{ customers(first: 10) { edges { node { invoices { lines { track { name } } } } } } }",
}
SCENARIOS: Final = ("no-fault", "faults")
FAULTY: Final = "catalog"
FAULT: Final[dict[str, Any]] = {"error_rate": 0.2, "error_status": 503, "jitter_ms": 200, "seed": 7}
"""The body of ``PUT /_faults`` on the faulty service in the "faults" scenario (``demo/faults.py``)."""

RESILIENT: Final = "resilient"
UNCACHED: Final = "uncached"
PLAIN: Final = "plain"
RESILIENT_FAULTY_SERVICE: Final = {"CACHE_TTL_MS": "2000", "STALE_IF_ERROR_MS": "600000"}
"""Settings the resilient BFF gets for the faulty service only; everything else is the default."""
PLAIN_SERVICE: Final = {"RETRY_ATTEMPTS": "1", "BREAKER_THRESHOLD": "1000000", "CACHE_TTL_MS": "0"}
"""Settings the plain BFF gets for every service: no retries, no breaker, no entity cache."""
UNCACHED_SERVICE: Final = {"CACHE_TTL_MS": "0"}
"""With ``--uncached``, a third BFF gets this for every service: the resilient one without its cache."""
RESILIENCE_FIELDS: Final = (
    "retry_attempts",
    "retry_wait_initial_ms",
    "retry_wait_max_ms",
    "breaker_threshold",
    "breaker_recovery_ms",
    "cache_ttl_ms",
    "stale_if_error_ms",
    "max_concurrency",
    "max_queue",
    "connect_timeout_ms",
    "read_timeout_ms",
)
"""Effective per-service settings written to the JSON, as the BFF reads them from its variables."""

MIN_REPORT_RUNS: Final = 200
"""Fewer timed runs than this and p99 is rough (starred in the table)."""
WARMUP_RUNS: Final = 10
"""Warm-up runs per BFF and stage, within ``WARMUP_SHARE`` of the stage's time."""
WARMUP_SHARE: Final = 0.15
STAGE_WEIGHTS: Final = {
    ("nested-customer", "no-fault"): 3.0,
    ("nested-customer", "faults"): 11.0,
    ("ten-customers", "no-fault"): 4.0,
    ("ten-customers", "faults"): 9.0,
}
"""Shares of ``--budget`` by stage. A stage's unused time goes to the later ones, so the cheap no-fault
stages get more than their 200 runs need (the "faults" ones take about 75 s, mostly plain's runs)."""
DEFAULT_BUDGET_S: Final = 220.0
"""The default ``--budget``: enough for 200 runs per stage of both BFFs (about 210 s were needed)."""
UNCACHED_BUDGET_S: Final = 450.0
"""The default ``--budget`` with ``--uncached`` (about 400 s were needed)."""
REQUEST_TIMEOUT_S: Final = 30.0


# BFF settings ------------------------------------------------------------------------------------


def bff_settings(service_urls: dict[str, str], name: str) -> dict[str, str]:
    """The ``BFF_*`` variables of the resilient, the uncached or the plain BFF."""
    env = {"BFF_LOG_LEVEL": "WARNING"}
    for service, url in service_urls.items():
        prefix = f"BFF_SERVICE_{service.upper()}_"
        env[prefix + "URL"] = url
        if name == PLAIN:
            env.update({prefix + k: v for k, v in PLAIN_SERVICE.items()})
        elif name == UNCACHED:
            env.update({prefix + k: v for k, v in UNCACHED_SERVICE.items()})
        elif service == FAULTY:
            env.update({prefix + k: v for k, v in RESILIENT_FAULTY_SERVICE.items()})
    return env


def bff_names(uncached: bool) -> tuple[str, ...]:
    """The BFFs to start, in the order they take turns."""
    return (RESILIENT, UNCACHED, PLAIN) if uncached else (RESILIENT, PLAIN)


def effective_settings(settings: dict[str, str], services: list[str]) -> dict[str, Any]:
    """What the BFF makes of ``settings``: its resilience settings per service and its deadline."""
    from bff.settings import load_settings
    from bff_chinook.schema import app

    loaded = load_settings(settings, services=app.service_defaults())
    return {
        "operation_timeout_ms": loaded.operation_timeout_ms,
        "services": {
            service: {k: getattr(loaded.service(service), k) for k in RESILIENCE_FIELDS}
            for service in services
        },
    }


# One run -----------------------------------------------------------------------------------------


@dataclass
class Sample:
    """One run: latency, errors (their codes), whether the data is complete, stale records, requests."""

    ms: float
    codes: list[str]
    complete: bool
    stale: int
    downstream: dict[str, int]


class Downstream:
    """The requests the services served, read from their ``/_stats`` after every run."""

    def __init__(self, http: httpx.AsyncClient, service_urls: dict[str, str]) -> None:
        self._http, self._urls = http, service_urls
        self._last: dict[str, int] = {}

    async def _total(self, base: str) -> int:
        response = await self._http.get(f"{base}/_stats")
        response.raise_for_status()
        total: int = response.json()["total"]
        return total

    async def since_last(self) -> dict[str, int]:
        """Requests per service since the last call (since the services started, the first time)."""
        totals = await asyncio.gather(*(self._total(base) for base in self._urls.values()))
        now = dict(zip(self._urls, totals, strict=True))
        served = {service: n - self._last.get(service, 0) for service, n in now.items()}
        self._last = now
        return served


async def run_once(
    http: httpx.AsyncClient, url: str, query: str, reference: Any, downstream: Downstream
) -> tuple[Sample, Any]:
    """Post ``query`` once; return the sample and the ``data`` answered.

    A transport failure or an answer other than HTTP 200 with JSON counts as an error (its code is
    the exception's name or ``HTTP <status>``), not as a failure of the benchmark.
    """
    start = time.perf_counter()
    try:
        response = await http.post(url, json={"query": query})
    except httpx.HTTPError as exc:
        ms = (time.perf_counter() - start) * 1000
        return Sample(ms, [type(exc).__name__], False, 0, await downstream.since_last()), None
    ms = (time.perf_counter() - start) * 1000
    is_json = response.headers.get("content-type", "").startswith("application/json")
    body = response.json() if is_json else {}
    codes = [str((error.get("extensions") or {}).get("code", "?")) for error in body.get("errors") or []]
    if response.status_code != 200 and not codes:
        codes = [f"HTTP {response.status_code}"]
    data = body.get("data")
    stale = len((body.get("extensions") or {}).get("stale") or [])
    complete = reference is not None and data == reference
    return Sample(ms, codes, complete, stale, await downstream.since_last()), data


# Stages ------------------------------------------------------------------------------------------


@dataclass
class Row:
    """The figures of one query, scenario and BFF."""

    query: str
    scenario: str
    bff: str
    warmup_runs: int = 0
    runs: int = 0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    mean_ms: float = math.nan
    max_ms: float = math.nan
    error_rate: float = math.nan
    complete_rate: float = math.nan
    stale_rate: float = math.nan
    stale_records: int = 0
    catalog_per_query: float = math.nan
    downstream_per_query: float = math.nan
    downstream_by_service: dict[str, float] = field(default_factory=dict)
    error_codes: dict[str, int] = field(default_factory=dict)
    breakers_after: dict[str, str] = field(default_factory=dict)
    samples_ms: list[float] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)

    def fill(self, samples: list[Sample]) -> None:
        """Compute the figures from the timed runs."""
        if not samples:
            return
        n, ms = len(samples), [s.ms for s in samples]
        self.runs, self.mean_ms, self.max_ms = n, sum(ms) / n, max(ms)
        self.p50_ms, self.p99_ms = percentile(ms, 50), percentile(ms, 99)
        self.error_rate = sum(bool(s.codes) for s in samples) / n
        self.complete_rate = sum(s.complete for s in samples) / n
        self.stale_rate = sum(s.stale > 0 for s in samples) / n
        self.stale_records = sum(s.stale for s in samples)
        by_service: Counter[str] = Counter()
        for s in samples:
            by_service.update(s.downstream)
        self.downstream_by_service = {k: round(v / n, 3) for k, v in by_service.items()}
        self.catalog_per_query = by_service[FAULTY] / n
        self.downstream_per_query = by_service.total() / n
        self.error_codes = dict(Counter(code for s in samples for code in s.codes).most_common())
        self.samples_ms = [round(m, 2) for m in ms]
        self.samples = [
            {"errors": s.codes, "complete": s.complete, "stale": s.stale, "downstream": s.downstream}
            for s in samples
        ]


class Bench:
    """The services, the BFFs and the client, with what every stage needs."""

    def __init__(
        self, http: httpx.AsyncClient, service_urls: dict[str, str], bffs: list[Bff], args: argparse.Namespace
    ) -> None:
        self.http, self.service_urls, self.bffs, self.args = http, service_urls, bffs, args
        self.downstream = Downstream(http, service_urls)
        self.budget_left: float = args.budget

    async def set_faults(self, fault: dict[str, Any] | None) -> None:
        """Put ``fault`` on the faulty service (re-seeding its random source), or clear its faults."""
        url = f"{self.service_urls[FAULTY]}/_faults"
        response = await (self.http.put(url, json=fault) if fault else self.http.delete(url))
        response.raise_for_status()

    async def breakers(self, bff: Bff) -> dict[str, str]:
        """Each service's breaker state in the BFF (``/readyz``)."""
        parts = urlsplit(bff.url)
        response = await self.http.get(f"{parts.scheme}://{parts.netloc}/readyz")
        return {name: state["breaker"] for name, state in response.json()["services"].items()}

    async def check(self, query: str) -> Any:
        """Without faults, each BFF answers without errors and with the same data; return that data."""
        await self.set_faults(None)
        reference = None
        for bff in self.bffs:
            with stage(query, bff.name, "check"):
                sample, data = await run_once(self.http, bff.url, QUERIES[query], None, self.downstream)
                if sample.codes or data is None:
                    raise BenchError(f"{bff.name} answered errors without faults: {sample.codes}")
                if reference is None:
                    reference = data
                elif data != reference:
                    raise BenchError(f"{bff.name} answered other data than {self.bffs[0].name}")
        return reference

    async def measure(self, query: str, scenario: str, reference: Any, weights_left: float) -> list[Row]:
        """Warm-up and timed runs of one stage, in its share of the budget left."""
        weight = STAGE_WEIGHTS[(query, scenario)]
        budget = self.budget_left * weight / weights_left
        began = time.perf_counter()
        deadline = began + budget
        fault = FAULT if scenario == "faults" else None
        rows = [Row(query, scenario, bff.name) for bff in self.bffs]

        async def run(i: int) -> Sample:
            sample, _ = await run_once(
                self.http, self.bffs[i].url, QUERIES[query], reference, self.downstream
            )
            return sample

        n = len(self.bffs)
        with stage(query, scenario, "warm-up"):
            await self.set_faults(fault)
            warm = await alternating(
                run, n, WARMUP_RUNS, [math.inf] * n, deadline=began + budget * WARMUP_SHARE
            )
        with stage(query, scenario, f"{self.args.runs} runs per BFF"):
            await self.set_faults(fault)  # the timed runs start from the seed
            await self.downstream.since_last()
            timed = await alternating(run, n, self.args.runs, [math.inf] * n, deadline=deadline)
            for bff, row, warmed, samples in zip(self.bffs, rows, warm, timed, strict=True):
                row.warmup_runs = len(warmed)
                row.fill(samples)
                row.breakers_after = await self.breakers(bff)
        self.budget_left = max(0.0, self.budget_left - (time.perf_counter() - began))
        return rows


async def _bench(service_urls: dict[str, str], bffs: list[Bff], args: argparse.Namespace) -> list[Row]:
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, trust_env=False) as http:
        bench = Bench(http, service_urls, bffs, args)
        rows: list[Row] = []
        weights_left = sum(STAGE_WEIGHTS.values())
        try:
            for query in QUERIES:
                reference = await bench.check(query)
                for scenario in SCENARIOS:
                    rows.extend(await bench.measure(query, scenario, reference, weights_left))
                    weights_left -= STAGE_WEIGHTS[(query, scenario)]
        finally:
            await bench.set_faults(None)
        return rows


# Report ------------------------------------------------------------------------------------------


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def _rate_ratio(plain: float, other: float) -> str:
    if other:
        return ratio(plain, other)
    return "x-" if not plain else f"{_pct(plain)} vs none"


def format_table(rows: list[Row]) -> str:
    """The table printed at the end: one line per query, scenario and BFF, then ratios and notes."""
    header = (
        f"{'query':<16} {'scenario':<9} {'bff':<10} {'runs':>5} {'p50 ms':>8} {'p99 ms':>9}"
        f" {'errors':>7} {'complete':>9} {'stale':>6} {'catalog/q':>10} {'downstream/q':>13}"
    )
    lines = [header]
    by_key = {(row.query, row.scenario, row.bff): row for row in rows}
    for query in QUERIES:
        for scenario in SCENARIOS:
            pair = [row for row in rows if (row.query, row.scenario) == (query, scenario)]
            for row in pair:
                star = "*" if row.runs < MIN_REPORT_RUNS else " "
                lines.append(
                    f"{row.query:<16} {row.scenario:<9} {row.bff:<10} {row.runs:>5} {row.p50_ms:>8.1f}"
                    f" {row.p99_ms:>8.1f}{star} {_pct(row.error_rate):>7} {_pct(row.complete_rate):>9}"
                    f" {_pct(row.stale_rate):>6} {row.catalog_per_query:>10.2f}"
                    f" {row.downstream_per_query:>13.2f}"
                )
            plain = by_key.get((query, scenario, PLAIN))
            for other in (row for row in pair if row.bff != PLAIN):
                if plain and plain.runs and other.runs:
                    lines.append(
                        f"  ratio (plain/{other.bff}): p50 {ratio(plain.p50_ms, other.p50_ms)},"
                        f" p99 {ratio(plain.p99_ms, other.p99_ms)},"
                        f" errors {_rate_ratio(plain.error_rate, other.error_rate)},"
                        f" catalog requests {ratio(plain.catalog_per_query, other.catalog_per_query)}"
                    )
            for row in pair:
                if row.error_codes:
                    codes = " ".join(f"{code}={n}" for code, n in row.error_codes.items())
                    lines.append(f"  {row.bff}: error codes {codes}")
                if open_ := {s: b for s, b in row.breakers_after.items() if b != "closed"}:
                    lines.append(f"  {row.bff}: breakers after the stage: {open_}")
        cost = []
        for bff in dict.fromkeys(row.bff for row in rows):
            calm, bad = by_key.get((query, "no-fault", bff)), by_key.get((query, "faults", bff))
            if calm and bad and calm.runs and bad.runs:
                cost.append(
                    f"{bff} p50 {ratio(bad.p50_ms, calm.p50_ms)}, p99 {ratio(bad.p99_ms, calm.p99_ms)}"
                )
        if cost:
            lines.append(f"  cost of the faults (faults/no-fault): {'; '.join(cost)}")
    if any(row.runs < MIN_REPORT_RUNS for row in rows):
        lines.append(
            f"* p99 from fewer than {MIN_REPORT_RUNS} runs (its stage ran out of its --budget share): rough"
        )
    return "\n".join(lines)


# Main --------------------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--runs",
        type=int,
        default=MIN_REPORT_RUNS,
        help="timed sequential runs per BFF and stage (default 200)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        help=f"seconds for the warm-up and timed runs of all stages together"
        f" (default {DEFAULT_BUDGET_S:g}, {UNCACHED_BUDGET_S:g} with --uncached)",
    )
    parser.add_argument(
        "--uncached",
        action="store_true",
        help="add a third BFF: the resilient one without its entity cache (retries and breaker only)",
    )
    args = parser.parse_args(argv)
    if args.budget is None:
        args.budget = UNCACHED_BUDGET_S if args.uncached else DEFAULT_BUDGET_S
    if args.runs < 1 or not 5 <= args.budget <= 3600:
        parser.error("need --runs >= 1 and 5 <= --budget <= 3600")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON; returns the exit code."""
    args = _parse(argv)
    sigterm_interrupts()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    machine, began = machine_info(), time.monotonic()

    def plan(service_urls: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
        return [(name, bff_settings(service_urls, name)) for name in bff_names(args.uncached)]

    with reported_failures(), children("faults", stamp, plan) as (service_urls, bffs):
        rows = asyncio.run(_bench(service_urls, bffs, args))
        services = list(service_urls)
        bff_env = {
            bff.name: {"env": bff.settings, "effective": effective_settings(bff.settings, services)}
            for bff in bffs
        }
    elapsed = time.monotonic() - began
    machine["load_average_after"] = os.getloadavg()
    settings = {
        "runs": args.runs,
        "budget_s": args.budget,
        "stage_weights": {f"{q} {s}": w for (q, s), w in STAGE_WEIGHTS.items()},
        "warmup_runs": WARMUP_RUNS,
        "request_timeout_s": REQUEST_TIMEOUT_S,
        "faulty_service": FAULTY,
        "fault": FAULT,
        "bffs": bff_env,
        "queries": QUERIES,
        "elapsed_s": round(elapsed, 1),
    }
    path = RESULTS_DIR / f"faults-{stamp}.json"
    report(path, rows, settings, machine, format_table(rows), elapsed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
