"""What DataLoader batching buys: the BFF with batching on and off, side by side, over the same services.

Run ``python bench/queries.py [--runs N] [--concurrency C] [--duration S]`` from the repository root.
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
import contextlib
import ctypes
import json
import math
import os
import platform
import select
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Final

import httpx

BENCH_DIR: Final = Path(__file__).resolve().parent
RESULTS_DIR: Final = BENCH_DIR / "results"

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
START_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 8.0
PR_SET_PDEATHSIG: Final = 1


class BenchError(Exception):
    """The benchmark cannot go on: a child did not start, or an answer was wrong."""


# Child processes ---------------------------------------------------------------------------------


class Child:
    """A child process in its own process group, so that stopping it also stops anything it started."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self._argv, self._env, self.log = name, argv, env, log
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start it and return the first line it prints on stdout (its ready line)."""
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                self._argv,
                env=self._env,
                stdin=subprocess.PIPE,  # _services.py exits when this closes, even if we are killed
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        assert self._proc.stdout is not None
        line = _read_line(self._proc.stdout, START_TIMEOUT_S)
        if not line:
            self.stop()
            raise BenchError(f"{self.name} did not start in {START_TIMEOUT_S:.0f} s; see {self.log}")
        return line

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM the group (SIGKILL with ``kill`` or after ``STOP_TIMEOUT_S``) and reap the child."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM when the parent dies, even by SIGKILL."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _read_line(stream: IO[bytes], timeout_s: float) -> str:
    """Read one line within ``timeout_s`` without blocking past it; empty when none came."""
    deadline, data = time.monotonic() + timeout_s, b""
    while b"\n" not in data and (remaining := deadline - time.monotonic()) > 0:
        if select.select([stream], [], [], remaining)[0]:
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                break
            data += chunk
    return data.partition(b"\n")[0].decode().strip() if b"\n" in data else ""


@dataclass
class Bff:
    """One ``bff serve`` child: its name, the settings it differs by, and its GraphQL URL once up."""

    name: str
    child: Child
    settings: dict[str, str]
    url: str = ""
    restarts: int = 0

    def start(self) -> None:
        line = self.child.start()
        if not line.startswith("GraphiQL: "):
            raise BenchError(f"bff {self.name} printed {line!r}; see {self.child.log}")
        self.url = line.removeprefix("GraphiQL: ")

    def restart(self) -> None:
        """Kill it, abandoning its work in flight, and start a fresh one (new port)."""
        self.child.stop(kill=True)
        self.restarts += 1
        self.start()


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


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of ``samples``; NaN when there are none."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


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


async def alternating(
    http: httpx.AsyncClient, runner: Runner, urls: list[str], count: int, budgets_s: list[float]
) -> list[list[Run]]:
    """Up to ``count`` runs on each URL, one at a time, taking the URLs in turn.

    Taking turns exposes every BFF to the same noise of the shared machine. Each URL has its own
    time budget: its first run starts if the budget is positive, a later one only if its mean run so
    far still fits.
    """
    runs: list[list[Run]] = [[] for _ in urls]
    spent = [0.0 for _ in urls]

    def wants_more(i: int) -> bool:
        done = len(runs[i])
        return done < count and (
            budgets_s[i] > 0 if done == 0 else spent[i] * (done + 1) / done <= budgets_s[i]
        )

    while active := [i for i in range(len(urls)) if wants_more(i)]:
        for i in active:
            start = time.perf_counter()
            runs[i].append(await runner(http, urls[i]))
            spent[i] += time.perf_counter() - start
    return runs


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
        with _stage(query, bff.name, "check and downstream count"):
            start = time.perf_counter()
            data = await count_downstream(http, service_urls, runner, bff.url, row)
            warmup_budgets.append(STAGE_BUDGET_S / 2 - (time.perf_counter() - start))
            _check_shape(query, data)
            if reference is None:
                reference = data
            elif data != reference:
                raise BenchError(f"{bff.name} answered other data than {bffs[0].name}")
    urls = [bff.url for bff in bffs]
    with _stage(query, "all", "warm-up"):  # the checked run was the first one
        warmed = await alternating(http, runner, urls, WARMUP_RUNS - 1, warmup_budgets)
        for row, runs in zip(rows, warmed, strict=True):
            row.warmup_runs = 1 + len(runs)
    with _stage(query, "all", "latency"):
        # The batched BFF is the product: it gets time for all --runs; the baseline only shows the gap.
        budgets = [args.batched_budget if bff.name == "batched" else STAGE_BUDGET_S for bff in bffs]
        timed = await alternating(http, runner, urls, args.runs, budgets)
    for row, runs in zip(rows, timed, strict=True):
        per_run = [sum(run.query_seconds) * 1000 for run in runs]
        per_query = [seconds * 1000 for run in runs for seconds in run.query_seconds]
        row.runs, row.mean_ms, row.max_ms = len(runs), sum(per_run) / len(per_run), max(per_run)
        row.p50_ms, row.p99_ms = percentile(per_run, 50), percentile(per_run, 99)
        row.samples_ms = [round(ms, 2) for ms in per_run]
        row.query_p50_ms, row.query_p99_ms = percentile(per_query, 50), percentile(per_query, 99)
    for bff, row in zip(bffs, rows, strict=True):
        with _stage(query, bff.name, "throughput"):
            await throughput(http, runner, bff, args, row)
    return rows


@contextlib.contextmanager
def _stage(query: str, bff: str, stage: str) -> Iterator[None]:
    """Report progress and time on stderr; name the stage in any error."""
    start = time.monotonic()
    print(f"  {query:<16} {bff:<10} {stage} ...", end="", file=sys.stderr, flush=True)
    try:
        yield
    except (BenchError, httpx.HTTPError) as exc:
        print(" failed", file=sys.stderr)
        raise BenchError(f"{query} on {bff}, {stage}: {type(exc).__name__}: {exc}") from exc
    print(f" {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)


# Report -------------------------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def _ratio(numerator: float, denominator: float) -> str:
    return f"x{_number(numerator / denominator)}" if denominator else "x-"


def _qps_bound(row: Row) -> float:
    """With none answered: all in flight took longer than the window, so qps < in flight / window."""
    return max(row.in_flight_at_end, 1) / row.load_s


def _qps(row: Row) -> str:
    return _number(row.qps) if row.queries else f"<{_number(_qps_bound(row))}"


def _qps_ratio(unbatched: Row, batched: Row) -> str:
    if unbatched.queries or not batched.qps:
        return _ratio(unbatched.qps, batched.qps)
    return f"x<{_number(_qps_bound(unbatched) / batched.qps)}"


def format_table(rows: list[Row]) -> str:
    """The table printed at the end: one line per query and BFF, then each query's ratios."""
    header = (
        f"{'query':<16} {'bff':<10} {'downstream':>10} {'runs':>5} {'p50 ms':>8} {'p99 ms':>9} {'qps':>8}"
    )
    lines = [header + "  downstream by service"]
    for query in QUERIES:
        pair = [row for row in rows if row.query == query]
        for row in pair:
            star = "*" if row.runs < MIN_REPORT_RUNS else " "
            services = " ".join(f"{s}={n}" for s, n in row.downstream_by_service.items() if n)
            lines.append(
                f"{row.query:<16} {row.bff:<10} {row.downstream:>10} {row.runs:>5} {row.p50_ms:>8.1f}"
                f" {row.p99_ms:>8.1f}{star} {_qps(row):>8}  {services}"
            )
        if len(pair) == 2:
            batched, unbatched = pair
            lines.append(
                f"  ratio (unbatched/batched): downstream {_ratio(unbatched.downstream, batched.downstream)},"
                f" p50 {_ratio(unbatched.p50_ms, batched.p50_ms)}, qps {_qps_ratio(unbatched, batched)}"
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


def _versions() -> dict[str, str]:
    names = ("strawberry-graphql", "graphql-core", "aiohttp", "httpx", "aiodataloader")
    return {name: metadata.version(name) for name in names}


def machine_info() -> dict[str, Any]:
    """What the figures depend on besides the code: CPUs, load, Python, libraries."""
    return {
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": _versions(),
        "code": _git_state(),
    }


def _git_state() -> dict[str, Any]:
    """The commit measured and how many files differ from it (the figures are of the work tree)."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=BENCH_DIR, capture_output=True, text=True, timeout=10)
        return done.stdout.strip() if done.returncode == 0 else ""

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD") or None, "modified_files": len(status.splitlines())}


def write_json(path: Path, rows: list[Row], settings: dict[str, Any], machine: dict[str, Any]) -> None:
    """Write the figures, the settings and the machine as one JSON document (NaN as null)."""
    clean = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(r).items()}
        for r in rows
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"settings": settings, "machine": machine, "rows": clean}, indent=2) + "\n")


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
    parser.add_argument("--concurrency", type=int, default=8, help="throughput workers (default 8)")
    parser.add_argument("--duration", type=float, default=5.0, help="throughput window, s (default 5)")
    args = parser.parse_args(argv)
    if args.runs < 1 or not 1 <= args.concurrency <= 64 or not 0.5 <= args.duration <= 60:
        parser.error("need --runs >= 1, 1 <= --concurrency <= 64 and 0.5 <= --duration <= 60")
    return args


@contextlib.contextmanager
def children(stamp: str) -> Iterator[tuple[dict[str, str], list[Bff]]]:
    """Start the demo services and both BFFs; stop all of them on the way out, whatever happens."""
    started: list[Child] = []
    try:
        log = RESULTS_DIR / f"queries-{stamp}.services.log"
        services = Child(
            "demo services", [sys.executable, str(BENCH_DIR / "_services.py")], dict(os.environ), log
        )
        started.append(services)
        service_urls: dict[str, str] = json.loads(services.start())
        bffs = []
        for name, batch_size in (("batched", None), ("unbatched", 1)):
            argv = [sys.executable, "-m", "bff.cli", "serve", "--host", "127.0.0.1", "--port", "0"]
            log = RESULTS_DIR / f"queries-{stamp}.{name}.log"
            settings = bff_settings(service_urls, batch_size)
            env = {k: v for k, v in os.environ.items() if not k.startswith("BFF_")} | settings
            child = Child(f"bff {name}", argv, env, log)
            started.append(child)
            bffs.append(Bff(name, child, settings))
            bffs[-1].start()
        yield service_urls, bffs
    finally:
        for child in reversed(started):
            child.stop()
            if child.log.exists() and not child.log.stat().st_size:
                child.log.unlink()


async def _bench(service_urls: dict[str, str], bffs: list[Bff], args: argparse.Namespace) -> list[Row]:
    limits = httpx.Limits(
        max_connections=args.concurrency + 4, max_keepalive_connections=args.concurrency + 4
    )
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, limits=limits, trust_env=False) as http:
        rows: list[Row] = []
        for query in QUERIES:
            rows.extend(await bench_query(http, query, bffs, service_urls, args))
        return rows


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON; returns the exit code."""
    args = _parse(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    machine, began = machine_info(), time.monotonic()
    try:
        with children(stamp) as (service_urls, bffs):
            rows = asyncio.run(_bench(service_urls, bffs, args))
            bff_env = {bff.name: {**bff.settings, "restarts": bff.restarts} for bff in bffs}
    except KeyboardInterrupt:
        print("interrupted; children stopped", file=sys.stderr)
        return 130
    except (BenchError, httpx.HTTPError) as exc:
        print(f"bench failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - began
    machine["load_average_after"] = os.getloadavg()
    settings = {
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
    write_json(path, rows, settings, machine)
    print(format_table(rows))
    print(
        f"{elapsed:.0f} s in all; {os.cpu_count()} CPUs, Python {platform.python_version()}; figures: {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
