"""bff against Apollo Server and plain Strawberry on tailcallhq/graphql-benchmarks' workload, a process each.

Run ``python bench/graphql_benchmarks.py [--duration 8] [--rounds 3]`` from the repository root (the
project installed, ``npm ci`` done in ``bench/peers/apollo``, Debian's ``nginx`` and ``wrk`` on PATH).
Everything listens on free 127.0.0.1 ports, in child processes stopped on exit, Ctrl-C or SIGTERM:

- json-server 0.17.4 over ``examples/jsonplaceholder/data/db.json`` (read-only, quiet);
- nginx in front of it, caching every answer and sending ``Cache-Control: max-age=43200`` (as the
  tailcall setup does: the REST service is fast and says its answers keep for 12 hours);
- the servers, each one process: ``bff`` serving ``examples.jsonplaceholder:app`` (``bff serve``),
  ``bff-cached`` (the same with its whole-response cache on, ``BFF_RESPONSE_CACHE=true``), ``apollo``
  (Apollo Server 5 + DataLoader, ``bench/peers/apollo``), ``plain`` (Strawberry + httpx +
  aiodataloader, ``bench/peers/strawberry_plain.py``), and with ``--baseline DIR`` ``bff-before``: the
  same app served by the bff checked out in ``DIR`` (``git archive COMMIT | tar -x -C DIR``), to
  measure a change against its base in the same run.

Stages: **check** (each server answers each query once; the JSON bodies must be equal, without
``errors``); **warm-up** (``--warmup`` s of load per query and server); **rounds**: ``--rounds``
times, for each query, each server in turn (the order rotating by round) gets
``wrk -t1 -c32 -d<duration>s``. Per query and server the table gives the median over rounds of
requests per second, p50 and p99 latency (wrk's, ms) and the 1-minute load average read after each
run; the ratios are the medians over rounds of each round's ratio (the two runs were adjacent in
time, so they met about the same noise). Only the engine rows (``bff``, ``bff-before``) get ratios to
the peers: ``bff-cached`` answers repeated queries without running them, so its row stands alone, with
its ratio to ``bff`` in a note under the table. After every run one more request must still answer the
checked body. Everything, every run included, goes to ``bench/results/graphql-benchmarks-<UTC>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx
from _children import (
    BENCH_DIR,
    RESULTS_DIR,
    BenchError,
    Child,
    bff_checkout,
    machine_info,
    number,
    reported_failures,
    sigterm_interrupts,
    write_json,
)

REPO: Final = BENCH_DIR.parent
DB_JSON: Final = REPO / "examples" / "jsonplaceholder" / "data" / "db.json"
APOLLO_DIR: Final = BENCH_DIR / "peers" / "apollo"
PLAIN_PEER: Final = BENCH_DIR / "peers" / "strawberry_plain.py"
JSON_SERVER_BIN_ENV: Final = "BFFTEST_JSON_SERVER_BIN"
MAX_AGE: Final = 43_200

QUERIES: Final[dict[str, str]] = {
    "q1": "{posts{id,userId,title,user{id,name,email}}}",
    "q2": "{posts{title}}",
    "q3": "{greet}",
}
GOALS: Final[dict[str, float]] = {"q1": 2.0, "q2": 1.2, "q3": 1.0}
"""bff / Apollo requests per second that issue 12 asks for."""

WRK_SCRIPT: Final = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%s]==]
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%%d,"duration_us":%%d,"bytes":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""

NGINX_CONF: Final = """
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    proxy_cache_path {tmp}/cache levels=1:2 keys_zone=rest:10m max_size=100m inactive=60m use_temp_path=off;
    upstream json_server {{
        server 127.0.0.1:{upstream_port};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://json_server;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache rest;
            proxy_cache_valid 200 60m;
            proxy_cache_valid 404 1m;
            proxy_ignore_headers Cache-Control Expires Set-Cookie;
            proxy_hide_header Cache-Control;
            add_header Cache-Control "max-age={max_age}" always;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
    }}
}}
"""

WRK_TIMEOUT_S: Final = 10
START_TIMEOUT_S: Final = 60.0


@dataclass
class Server:
    """One GraphQL server under test: its name, its child process and its endpoint once up."""

    name: str
    child: Child
    url: str = ""


@dataclass
class Run:
    """One wrk run of one query on one server."""

    query: str
    server: str
    round: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    bytes_per_response: float
    errors: dict[str, int]
    load_average: float


@dataclass
class Row:
    """The medians over rounds of one query on one server, and its ratios to the peers."""

    query: str
    server: str
    rounds: int
    rps: float
    p50_ms: float
    p99_ms: float
    load_average: float
    errors: int
    ratios: dict[str, float] = field(default_factory=dict)


# Processes ----------------------------------------------------------------------------------------


def free_port() -> int:
    """A port free on 127.0.0.1 now (the child binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(child: Child, port: int) -> None:
    """Wait until something accepts connections on ``port``; ``BenchError`` after ``START_TIMEOUT_S``."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise BenchError(f"{child.name} did not listen on {port} in {START_TIMEOUT_S:.0f} s; see {child.log}")


def json_server_bin() -> Path:
    """json-server 0.17.4: ``$BFFTEST_JSON_SERVER_BIN``, ``.ci/node_modules``, or ``PATH``."""
    candidates = [
        os.environ.get(JSON_SERVER_BIN_ENV),
        str(REPO / ".ci" / "node_modules" / ".bin" / "json-server"),
    ]
    candidates.append(shutil.which("json-server"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise BenchError(f"json-server not found: npm ci --prefix .ci, or set {JSON_SERVER_BIN_ENV}")


def _need(tool: str) -> str:
    found = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None)
    if found is None:
        raise BenchError(f"{tool} not found: apt-get install {tool}")
    return found


@contextlib.contextmanager
def stack(stamp: str, tmp: Path, args: argparse.Namespace) -> Iterator[tuple[str, list[Server]]]:
    """json-server, nginx and the servers; yields nginx's base URL and the started servers."""
    started: list[Child] = []

    def child(name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> Child:
        made = Child(name, argv, env, RESULTS_DIR / f"graphql-benchmarks-{stamp}.{name}.log", cwd=cwd)
        started.append(made)
        return made

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("BFF_")}
    try:
        rest_port, nginx_port = free_port(), free_port()
        rest = child(
            "json-server",
            [
                str(json_server_bin()),
                "--read-only",
                "--quiet",
                "--host",
                "127.0.0.1",
                "--port",
                str(rest_port),
                str(DB_JSON),
            ],
            base_env,
            cwd=DB_JSON.parent,
        )
        rest.spawn()
        wait_listening(rest, rest_port)
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=nginx_port, upstream_port=rest_port, max_age=MAX_AGE))
        nginx = child(
            "nginx",
            [_need("nginx"), "-p", str(tmp), "-e", str(tmp / "nginx-error.log"), "-c", str(conf)],
            base_env,
        )
        nginx.spawn()
        wait_listening(nginx, nginx_port)
        upstream = f"http://127.0.0.1:{nginx_port}"
        servers: list[Server] = []
        wanted = set(args.servers)
        bff_env = base_env | {"BFF_SERVICE_JSONPLACEHOLDER_URL": upstream, **dict(args.bff_env)}
        serve = [
            sys.executable,
            "-m",
            "bff.cli",
            "serve",
            "--app",
            "examples.jsonplaceholder:app",
            "--port",
            "0",
        ]
        if "bff" in wanted:
            servers.append(Server("bff", child("bff", serve, bff_env, cwd=REPO)))
        if "bff-cached" in wanted:
            cached_env = bff_env | {"BFF_RESPONSE_CACHE": "true"}
            servers.append(Server("bff-cached", child("bff-cached", serve, cached_env, cwd=REPO)))
        if args.baseline is not None:
            before_env = bff_env | {"PYTHONPATH": str(args.baseline)}
            servers.append(Server("bff-before", child("bff-before", serve, before_env, cwd=args.baseline)))
        if "apollo" in wanted:
            if not (APOLLO_DIR / "node_modules").is_dir():
                raise BenchError(f"the Apollo peer is not installed: npm ci --prefix {APOLLO_DIR}")
            env = base_env | {"UPSTREAM_URL": upstream, "PORT": "0", "NODE_ENV": "production"}
            servers.append(Server("apollo", child("apollo", ["node", str(APOLLO_DIR / "server.mjs")], env)))
        if "plain" in wanted:
            argv = [sys.executable, str(PLAIN_PEER), "--upstream", upstream, "--port", "0"]
            servers.append(Server("plain", child("plain", argv, base_env)))
        for server in servers:
            line = server.child.start()
            url = line.removeprefix("GraphiQL: ").removeprefix("listening: ")
            if not url.startswith("http://"):
                raise BenchError(f"{server.name} printed {line!r}; see {server.child.log}")
            server.url = url
        yield upstream, servers
    finally:
        for started_child in reversed(started):
            started_child.stop()
            if started_child.log.exists() and not started_child.log.stat().st_size:
                started_child.log.unlink()


# Stages -------------------------------------------------------------------------------------------


def check_upstream(http: httpx.Client, upstream: str) -> None:
    """nginx answers the example's data with ``max-age=43200``, from its cache the second time."""
    for _ in range(2):
        response = http.get(f"{upstream}/posts")
        response.raise_for_status()
    if response.headers.get("cache-control") != f"max-age={MAX_AGE}":
        raise BenchError(f"nginx sent Cache-Control {response.headers.get('cache-control')!r}")
    if response.headers.get("x-cache-status") != "HIT" or len(response.json()) != 100:
        raise BenchError("nginx does not cache /posts, or /posts does not hold the example's 100 posts")


def answer(http: httpx.Client, server: Server, query: str) -> str:
    """The server's body for ``query``, normalised (keys sorted, no spaces); ``BenchError`` on errors."""
    response = http.post(server.url, json={"query": QUERIES[query]})
    if response.status_code != 200:
        raise BenchError(
            f"{server.name} answered {query} with HTTP {response.status_code}: {response.text[:300]}"
        )
    body = response.json()
    if "errors" in body or not body.get("data"):
        raise BenchError(f"{server.name} answered {query} with errors: {str(body)[:300]}")
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def check_answers(http: httpx.Client, servers: list[Server]) -> dict[str, str]:
    """Every server answers every query with the same body (correctness before speed)."""
    expected: dict[str, str] = {}
    for query in QUERIES:
        bodies = {server.name: answer(http, server, query) for server in servers}
        first = next(iter(bodies.values()))
        differing = [name for name, body in bodies.items() if body != first]
        if differing:
            raise BenchError(f"{query}: {', '.join(differing)} answered differently from {servers[0].name}")
        if query == "q1" and (first.count('"user":{') != 100):
            raise BenchError("q1 does not have 100 posts each with its user")
        expected[query] = first
        print(f"  check {query}: {len(servers)} servers agree, {len(first)} bytes", file=sys.stderr)
    return expected


def wrk(
    url: str, query: str, duration_s: float, args: argparse.Namespace, script_dir: Path
) -> dict[str, Any]:
    """One wrk run (bounded in time): its summary as a dict (latencies in microseconds)."""
    script = script_dir / f"{query}.lua"
    if not script.exists():
        script.write_text(WRK_SCRIPT % json.dumps({"query": QUERIES[query]}))
    argv = [
        _need("wrk"),
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{duration_s:g}s",
        f"--timeout={WRK_TIMEOUT_S}s",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=duration_s + WRK_TIMEOUT_S + 20, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            summary: dict[str, Any] = json.loads(line.removeprefix("WRK_JSON "))
            return summary
    raise BenchError(f"wrk failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}")


def measure(
    http: httpx.Client,
    server: Server,
    query: str,
    round_no: int,
    expected: str,
    args: argparse.Namespace,
    tmp: Path,
) -> Run:
    """One timed run, then one checked answer."""
    summary = wrk(server.url, query, args.duration, args, tmp)
    load = os.getloadavg()[0]
    if answer(http, server, query) != expected:
        raise BenchError(f"{server.name} answered {query} differently after round {round_no}")
    requests = max(int(summary["requests"]), 1)
    errors = {k: int(summary[k]) for k in ("connect", "read", "write", "status", "timeout") if summary[k]}
    run = Run(
        query=query,
        server=server.name,
        round=round_no,
        rps=summary["requests"] / (summary["duration_us"] / 1e6),
        p50_ms=summary["p50_us"] / 1000,
        p90_ms=summary["p90_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        max_ms=summary["max_us"] / 1000,
        requests=int(summary["requests"]),
        bytes_per_response=summary["bytes"] / requests,
        errors=errors,
        load_average=load,
    )
    print(
        f"  round {round_no} {query} {server.name:<10} {run.rps:>8.0f} rps  p50 {run.p50_ms:6.1f} ms"
        f"  p99 {run.p99_ms:6.1f} ms  load {load:.2f}{'  errors ' + str(errors) if errors else ''}",
        file=sys.stderr,
        flush=True,
    )
    return run


def bench(
    http: httpx.Client, servers: list[Server], expected: dict[str, str], args: argparse.Namespace, tmp: Path
) -> list[Run]:
    """Warm-up, then ``--rounds`` rounds of every query on every server, the order rotating."""
    for query in args.queries:
        for server in servers:
            wrk(server.url, query, args.warmup, args, tmp)
    print(f"  warmed up: {args.warmup:g} s per query and server", file=sys.stderr)
    runs: list[Run] = []
    for round_no in range(1, args.rounds + 1):
        shift = (round_no - 1) % len(servers)
        order = servers[shift:] + servers[:shift]
        for query in args.queries:
            for server in order:
                runs.append(measure(http, server, query, round_no, expected[query], args, tmp))
    return runs


# Report -------------------------------------------------------------------------------------------


PEERS: Final = ("apollo", "plain")
ENGINES: Final = ("bff", "bff-before")
"""The rows that get ratios to the peers: bff running every operation."""
CACHED: Final = "bff-cached"
"""bff with its response cache on: its own row, compared with ``bff`` only, in a note."""


def summarise(runs: list[Run], servers: list[Server], queries: list[str]) -> list[Row]:
    """Medians per query and server; for the engine rows, the median of per-round ratios to each peer,
    and for ``bff-cached`` to ``bff``."""
    rows: list[Row] = []
    names = [server.name for server in servers]
    for query in queries:
        for name in names:
            mine = [run for run in runs if run.query == query and run.server == name]
            row = Row(
                query=query,
                server=name,
                rounds=len(mine),
                rps=statistics.median(run.rps for run in mine),
                p50_ms=statistics.median(run.p50_ms for run in mine),
                p99_ms=statistics.median(run.p99_ms for run in mine),
                load_average=statistics.median(run.load_average for run in mine),
                errors=sum(sum(run.errors.values()) for run in mine),
            )
            compared = PEERS if name in ENGINES else ("bff",) if name == CACHED else ()
            for peer in compared:
                theirs = {run.round: run.rps for run in runs if run.query == query and run.server == peer}
                per_round = [run.rps / theirs[run.round] for run in mine if theirs.get(run.round)]
                if per_round:
                    row.ratios[peer] = statistics.median(per_round)
            rows.append(row)
    return rows


def format_table(rows: list[Row], args: argparse.Namespace) -> str:
    """The Markdown table: one line per query and server."""
    lines = [
        "| query | server | rps | p50 ms | p99 ms | ÷ Apollo (goal) | ÷ plain | load avg | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        apollo = row.ratios.get("apollo")
        plain = row.ratios.get("plain")
        goal = f" ({GOALS[row.query]:g})" if apollo is not None and row.query in GOALS else ""
        lines.append(
            f"| {row.query} | {row.server} | {row.rps:.0f} | {number(row.p50_ms)} | {number(row.p99_ms)} "
            f"| {f'{apollo:.2f}' if apollo is not None else '-'}{goal} "
            f"| {f'{plain:.2f}' if plain is not None else '-'} | {row.load_average:.2f} | {row.errors} |"
        )
    cached = [
        f"{row.query} {row.ratios['bff']:.2f}" for row in rows if row.server == CACHED and "bff" in row.ratios
    ]
    if cached:
        lines.append(
            f"{CACHED}: BFF_RESPONSE_CACHE=true, repeated queries answered without running (not an engine "
            f"figure, so no ratios to the peers); rps ÷ bff: {', '.join(cached)}."
        )
    lines.append(
        f"wrk -t{args.threads} -c{args.connections}, {args.duration:g} s per run, medians of {args.rounds} "
        "rounds; ratios: medians of per-round rps ratios. "
        f"q1 `{QUERIES['q1']}`, q2 `{QUERIES['q2']}`, q3 `{QUERIES['q3']}`."
    )
    return "\n".join(lines)


# Main ---------------------------------------------------------------------------------------------


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("BFF_"):
        raise argparse.ArgumentTypeError("expected BFF_NAME=VALUE")
    return name, value


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of load per run (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are over them (default 3)")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of warm-up per query and server (default 2)"
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--queries", nargs="+", choices=list(QUERIES), default=list(QUERIES))
    parser.add_argument(
        "--servers",
        nargs="+",
        choices=["bff", CACHED, "apollo", "plain"],
        default=["bff", CACHED, "apollo", "plain"],
    )
    parser.add_argument(
        "--baseline", type=bff_checkout, help="a bff checkout to serve as bff-before, e.g. the base commit"
    )
    parser.add_argument(
        "--bff-env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="BFF_NAME=VALUE",
        help="a setting for bff",
    )
    args = parser.parse_args(argv)
    if not (0.5 <= args.duration <= 120 and 1 <= args.rounds <= 20 and 0 <= args.warmup <= 60):
        parser.error("need 0.5 <= --duration <= 120, 1 <= --rounds <= 20 and 0 <= --warmup <= 60")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON; returns the exit code."""
    args = _parse(argv)
    sigterm_interrupts()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    machine, began = machine_info(), time.monotonic()
    with (
        reported_failures(subprocess.TimeoutExpired),
        tempfile.TemporaryDirectory(prefix="bff-bench-") as tmp_name,
        httpx.Client(timeout=30, trust_env=False) as http,
    ):
        tmp = Path(tmp_name)
        tmp.chmod(0o755)  # nginx's workers, unprivileged when we are root, write its cache there
        with stack(stamp, tmp, args) as (upstream, servers):
            check_upstream(http, upstream)
            expected = check_answers(http, servers)
            runs = bench(http, servers, expected, args, tmp)
            names = {server.name: server.url for server in servers}
    elapsed = time.monotonic() - began
    machine["load_average_after"] = os.getloadavg()
    rows = summarise(runs, [s for s in servers], args.queries)
    table = format_table(rows, args)
    settings = {
        "duration_s": args.duration,
        "rounds": args.rounds,
        "warmup_s": args.warmup,
        "connections": args.connections,
        "threads": args.threads,
        "queries": {q: QUERIES[q] for q in args.queries},
        "servers": names,
        "baseline": str(args.baseline) if args.baseline else None,
        "bff_env": dict(args.bff_env),
        "elapsed_s": round(elapsed, 1),
    }
    path = RESULTS_DIR / f"graphql-benchmarks-{stamp}.json"
    write_json(path, rows, settings | {"runs": [vars(run) for run in runs]}, machine)
    print(table)
    print(
        f"{elapsed:.0f} s in all; load average before {machine['load_average']}, after "
        f"{machine['load_average_after']}; {os.cpu_count()} CPUs; figures: {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
