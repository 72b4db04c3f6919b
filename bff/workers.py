"""``bff serve --workers N``: N processes serving one port, sharing their state through Redis.

One Python process runs one event loop on one core; workers are how one machine's cores are used.
Each worker is a ``bff serve --reuse-port`` child process bound to the same host and port with
``SO_REUSEPORT``, and the kernel spreads new connections over them (Linux hashes each connection's
addresses, so a connection, a WebSocket included, stays with one worker for its life). This needs
no process manager beyond this small supervisor and no socket passing; any process of the same
user may join the port, as with any ``SO_REUSEPORT`` listener.

The parent process:

- picks the port: for ``--port 0`` a free one, reserved by a socket bound with ``SO_REUSEPORT``
  (but not listening, so it takes no connection) until every worker listens;
- starts the workers, and prints ``workers: N processes on port P (pids ...)`` then
  ``GraphiQL: http://HOST:PORT/graphql`` once every one of them accepts connections;
- restarts a worker that exits (at most :data:`MAX_RESTARTS` within :data:`RESTART_WINDOW_S`;
  beyond that it stops everything and exits 1);
- on SIGTERM or SIGINT stops them all (SIGTERM, SIGKILL after :data:`STOP_TIMEOUT_S`) and exits 0.

Workers get SIGTERM when the parent dies, even by SIGKILL (Linux ``PR_SET_PDEATHSIG``). Each runs in a
session of its own, so that Linux's autogroup scheduling gives each worker the CPU share a separate
process gets (in one session, N workers shared one share: on a busy machine, 2 workers served as
much as 1 process; ``bench/instances.py`` showed it). Their logs go to the parent's stderr. Workers
share nothing but Redis, which is why ``--workers`` above 1 needs ``BFF_REDIS_URL``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Final

__all__ = ["MAX_RESTARTS", "RESTART_WINDOW_S", "STOP_TIMEOUT_S", "run_workers"]

START_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 10.0
MAX_RESTARTS: Final = 5
RESTART_WINDOW_S: Final = 60.0
_PR_SET_PDEATHSIG: Final = 1
_READY: Final = "GraphiQL: "


class WorkerFailed(Exception):
    """A worker did not start, or kept dying."""


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the parent dies, even by SIGKILL (Linux)."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _reserve(host: str) -> socket.socket:
    """A socket bound with ``SO_REUSEPORT`` to a free port of ``host``, not listening."""
    family, kind, proto, _name, address = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
    reserved = socket.socket(family, kind, proto)
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reserved.bind(address)
    return reserved


class _Worker:
    def __init__(self, index: int, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.index = index
        self._argv = list(argv)
        self._env = dict(env)
        self.process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Start the worker; return its ready line once it accepts connections."""
        self.process = await asyncio.create_subprocess_exec(
            *self._argv,
            env=self._env,
            stdout=asyncio.subprocess.PIPE,
            # A session of its own: with Linux's autogroup scheduling (on by default), processes of
            # one session share one CPU share, so N workers in the parent's session would together
            # get what one process gets on a busy machine.
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        stdout = self.process.stdout
        assert stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while True:
                    line = (await stdout.readline()).decode()
                    if not line:
                        raise WorkerFailed(f"worker {self.index} exited before it was ready")
                    if line.startswith(_READY):
                        break
        except TimeoutError:
            await self.stop()
            raise WorkerFailed(f"worker {self.index} not ready within {START_TIMEOUT_S:.0f} s") from None
        self._drain = asyncio.create_task(_discard(stdout))
        return line.strip()

    async def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        if self._drain is not None:
            self._drain.cancel()


async def _discard(stream: asyncio.StreamReader) -> None:
    while await stream.read(65_536):
        pass


async def run_workers(
    command: Sequence[str], *, host: str, port: int, workers: int, env: Mapping[str, str]
) -> int:
    """Run ``workers`` copies of ``command`` (a ``bff serve`` argv without ``--host``, ``--port`` and
    ``--reuse-port``) on ``host``:``port`` until SIGTERM or SIGINT; returns the exit code."""
    reserved = _reserve(host) if port == 0 else None
    if reserved is not None:
        port = int(reserved.getsockname()[1])
    argv = [*command, "--host", host, "--port", str(port), "--reuse-port", "--workers", "1"]
    pool = [_Worker(index, argv, env) for index in range(workers)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        ready = await asyncio.gather(*(worker.start() for worker in pool))
        if reserved is not None:
            reserved.close()
            reserved = None
        pids = " ".join(str(worker.process.pid) for worker in pool if worker.process is not None)
        print(f"workers: {workers} processes on port {port} (pids {pids})", flush=True)
        print(ready[0], flush=True)
        return await _supervise(pool, stop)
    except WorkerFailed as exc:
        print(f"bff: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if reserved is not None:
            reserved.close()
        await asyncio.gather(*(worker.stop() for worker in pool))
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _supervise(pool: list[_Worker], stop: asyncio.Event) -> int:
    """Restart workers that exit until ``stop`` is set; 1 when they keep dying."""
    restarts: list[float] = []
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while True:
            exits = {
                asyncio.ensure_future(worker.process.wait()): worker
                for worker in pool
                if worker.process is not None
            }
            done, _ = await asyncio.wait({stopping, *exits}, return_when=asyncio.FIRST_COMPLETED)
            for waiting in exits:
                waiting.cancel()
            if stopping in done:
                return 0
            for finished in done:
                worker = exits[finished]
                now = time.monotonic()
                restarts = [at for at in restarts if now - at < RESTART_WINDOW_S] + [now]
                code = worker.process.returncode if worker.process is not None else None
                if len(restarts) > MAX_RESTARTS:
                    print(
                        f"bff: workers exited {len(restarts)} times in {RESTART_WINDOW_S:.0f} s; stopping",
                        file=sys.stderr,
                        flush=True,
                    )
                    return 1
                print(
                    f"bff: worker {worker.index} exited ({code}); restarting it", file=sys.stderr, flush=True
                )
                await worker.start()
    finally:
        stopping.cancel()
