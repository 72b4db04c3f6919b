"""What the benchmarks share: their child processes, sequential timing and the record of the machine.

``children()`` starts the demo services (``bench/_services.py``) and any number of ``bff serve``
over them, each in its own process group on 127.0.0.1, and stops all of them on the way out, whatever
happens; on Linux the children also get SIGTERM when the benchmark dies outright (even by SIGKILL),
and the services child exits when its standard input closes. ``sigterm_interrupts()`` makes SIGTERM
clean up like Ctrl-C. ``alternating()`` times runs one at a time, taking the BFFs in turn, so that
every BFF meets the same noise of the shared machine. ``machine_info()`` and ``percentile()`` are the
rest of what ``bench/queries.py`` and ``bench/faults.py`` both report.

Not a benchmark: imported by them (``bench/`` is on ``sys.path`` when one runs as a script).
"""

from __future__ import annotations

import argparse
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
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Final, TypeVar

import httpx

BENCH_DIR: Final = Path(__file__).resolve().parent
RESULTS_DIR: Final = BENCH_DIR / "results"

START_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 8.0
PR_SET_PDEATHSIG: Final = 1

T = TypeVar("T")


class BenchError(Exception):
    """The benchmark cannot go on: a child did not start, or an answer was wrong."""


# Child processes ---------------------------------------------------------------------------------


class Child:
    """A child process in its own process group, so that stopping it also stops anything it started."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log: Path, *, cwd: Path | None = None
    ) -> None:
        self.name, self._argv, self._env, self.log, self._cwd = name, argv, env, log, cwd
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start it and return the first line it prints on stdout (its ready line)."""
        self.spawn(ready_line=True)
        assert self._proc is not None
        assert self._proc.stdout is not None
        line = _read_line(self._proc.stdout, START_TIMEOUT_S)
        if not line:
            self.stop()
            raise BenchError(f"{self.name} did not start in {START_TIMEOUT_S:.0f} s; see {self.log}")
        return line

    def spawn(self, *, ready_line: bool = False) -> None:
        """Start it without waiting; its stdout goes to the log too unless ``ready_line`` (then
        :meth:`start` reads it)."""
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                self._argv,
                env=self._env,
                cwd=self._cwd,
                stdin=subprocess.PIPE,  # _services.py exits when this closes, even if we are killed
                stdout=subprocess.PIPE if ready_line else log,
                stderr=log,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    @property
    def pid(self) -> int:
        """The child's process id (it must be running)."""
        if self._proc is None:
            raise BenchError(f"{self.name} is not running")
        return self._proc.pid

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the process has used so far, from ``/proc`` (NaN elsewhere)."""
        proc = self._proc
        try:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split() if proc else []
        except OSError:
            return math.nan
        if len(fields) < 13:
            return math.nan
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

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


BffPlan = Callable[[dict[str, str]], list[tuple[str, dict[str, str]]]]
"""From the services' URLs (name -> base URL), each BFF to start: its name and its ``BFF_*`` variables."""


@contextlib.contextmanager
def children(prefix: str, stamp: str, plan: BffPlan) -> Iterator[tuple[dict[str, str], list[Bff]]]:
    """Start the demo services and the BFFs of ``plan``; stop all of them on the way out, whatever happens.

    Each child's stderr goes to ``RESULTS_DIR/<prefix>-<stamp>.<name>.log``, removed when empty. A BFF
    gets this process's environment without any ``BFF_*`` variable, plus its own.
    """
    started: list[Child] = []
    try:
        log = RESULTS_DIR / f"{prefix}-{stamp}.services.log"
        services = Child(
            "demo services", [sys.executable, str(BENCH_DIR / "_services.py")], dict(os.environ), log
        )
        started.append(services)
        service_urls: dict[str, str] = json.loads(services.start())
        bffs = []
        for name, settings in plan(service_urls):
            argv = [sys.executable, "-m", "bff.cli", "serve", "--host", "127.0.0.1", "--port", "0"]
            log = RESULTS_DIR / f"{prefix}-{stamp}.{name}.log"
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


@contextlib.contextmanager
def reported_failures(*also: type[BaseException]) -> Iterator[None]:
    """End the benchmark on Ctrl-C (exit 130) or a failure (``BenchError``, an HTTP error, ``also``:
    exit 1) with one line on stderr; the children are stopped by then (:func:`children`)."""
    try:
        yield
    except KeyboardInterrupt:
        print("interrupted; children stopped", file=sys.stderr)
        raise SystemExit(130) from None
    except (BenchError, httpx.HTTPError, *also) as exc:
        print(f"bench failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def bff_checkout(value: str) -> Path:
    """``--baseline DIR``: the checkout's absolute path; an argparse error when it holds no bff."""
    path = Path(value).resolve()
    if not (path / "bff" / "cli.py").is_file():
        raise argparse.ArgumentTypeError(f"{path} holds no bff checkout")
    return path


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C


def sigterm_interrupts() -> None:
    """From now on SIGTERM raises ``KeyboardInterrupt``, so that ``children()`` cleans up as on Ctrl-C."""
    signal.signal(signal.SIGTERM, _interrupt)


# Timing -------------------------------------------------------------------------------------------


async def alternating(
    run: Callable[[int], Awaitable[T]],
    bffs: int,
    count: int,
    budgets_s: list[float],
    *,
    deadline: float = math.inf,
) -> list[list[T]]:
    """Up to ``count`` runs of ``run(i)`` for each of ``bffs`` BFFs, one at a time, taking them in turn.

    Taking turns exposes every BFF to the same noise of the shared machine. Each BFF has its own
    time budget: its first run starts if the budget is positive, a later one only if its mean run so
    far still fits. No run starts that would likely end past ``deadline`` (``time.perf_counter()``).
    """
    runs: list[list[T]] = [[] for _ in range(bffs)]
    spent = [0.0 for _ in range(bffs)]

    def wants_more(i: int) -> bool:
        done = len(runs[i])
        if done >= count or not (
            budgets_s[i] > 0 if done == 0 else spent[i] * (done + 1) / done <= budgets_s[i]
        ):
            return False
        return time.perf_counter() + (spent[i] / done if done else 0.0) <= deadline

    while active := [i for i in range(bffs) if wants_more(i)]:
        for i in active:
            if not wants_more(i):  # only the deadline can have passed since ``active`` was made
                continue
            start = time.perf_counter()
            runs[i].append(await run(i))
            spent[i] += time.perf_counter() - start
    return runs


@contextlib.contextmanager
def stage(query: str, bff: str, stage: str) -> Iterator[None]:
    """Report progress and time on stderr; name the stage in any error."""
    start = time.monotonic()
    print(f"  {query:<16} {bff:<10} {stage} ...", end="", file=sys.stderr, flush=True)
    try:
        yield
    except (BenchError, httpx.HTTPError) as exc:
        print(" failed", file=sys.stderr)
        raise BenchError(f"{query} on {bff}, {stage}: {type(exc).__name__}: {exc}") from exc
    print(f" {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of ``samples``; NaN when there are none."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


# Report -------------------------------------------------------------------------------------------


def number(value: float) -> str:
    """A figure with two or three significant digits (no decimals from 100 on)."""
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def ratio(numerator: float, denominator: float) -> str:
    """``x<numerator / denominator>``, or ``x-`` when the denominator is 0."""
    return f"x{number(numerator / denominator)}" if denominator else "x-"


def report(
    path: Path, rows: list[Any], settings: dict[str, Any], machine: dict[str, Any], table: str, elapsed: float
) -> None:
    """Write the figures to ``path`` (:func:`write_json`), then print ``table`` and a closing line."""
    write_json(path, rows, settings, machine)
    print(table)
    print(
        f"{elapsed:.0f} s in all; {os.cpu_count()} CPUs, Python {platform.python_version()}; figures: {path}"
    )


def write_json(path: Path, rows: list[Any], settings: dict[str, Any], machine: dict[str, Any]) -> None:
    """Write the figures (dataclass ``rows``), the settings and the machine as one JSON document.

    A NaN field of a row is written as null.
    """
    clean = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(r).items()}
        for r in rows
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"settings": settings, "machine": machine, "rows": clean}, indent=2) + "\n")


# The machine --------------------------------------------------------------------------------------


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
