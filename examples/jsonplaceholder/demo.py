"""``bff demo --app examples.jsonplaceholder:app``: json-server 0.17 over ``data/db.json``, and the BFF.

json-server is found as a newcomer would have it: a ``json-server`` on ``PATH`` (0.17.x; 1.x has
other flags and query conventions and exits at its first unknown flag), else ``npx --yes
json-server@0.17.4``, which downloads it the first time. It runs ``--read-only`` (writes answer 403),
so the shipped data never changes, with the data directory as its working directory (json-server
reads ``./public`` and ``./json-server.json`` from there; it has neither).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import IO

from examples.jsonplaceholder.data import DB_JSON

__all__ = ["DEFAULT_PORT", "JSON_SERVER_VERSION", "JsonServerDemo", "json_server_command", "json_server_demo"]

JSON_SERVER_VERSION = "0.17.4"
"""The json-server ``npx`` runs, and the one the example is tested against."""
DEFAULT_PORT = 3000
"""json-server's port unless ``free_ports``: the ``jsonplaceholder`` service's ``default_url``."""
START_TIMEOUT_S = 120.0
"""Seconds json-server has to answer; ``npx`` may download it first."""
STOP_GRACE_S = 5.0
"""Seconds between SIGTERM and SIGKILL when stopping it."""


@dataclass
class JsonServerDemo:
    """The running json-server: ``urls`` has the ``jsonplaceholder`` service's base URL."""

    urls: Mapping[str, str]


def json_server_command(which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """The argv that starts json-server: ``[json-server]`` from ``PATH``, else ``npx`` with the pinned
    version. Raises ``FileNotFoundError`` when there is neither (``bff`` exits 1 saying so)."""
    found = which("json-server")
    if found is not None:
        return [found]
    npx = which("npx")
    if npx is not None:
        return [npx, "--yes", f"json-server@{JSON_SERVER_VERSION}"]
    raise FileNotFoundError(
        f"json-server not found: install Node.js (for npx) or put json-server {JSON_SERVER_VERSION} on PATH"
    )


@contextlib.asynccontextmanager
async def json_server_demo(host: str, free_ports: bool) -> AsyncIterator[JsonServerDemo]:
    """Run json-server on ``host`` (port 3000, or a free one when ``free_ports``) until the block exits.

    Raises ``OSError`` when the port is taken, json-server is missing, or it exits or stays silent
    for ``START_TIMEOUT_S`` instead of answering (the message ends with its output).
    """
    port = _bindable_port(host, 0 if free_ports else DEFAULT_PORT)
    url = f"http://{host}:{port}"
    argv = [
        *json_server_command(),
        "--read-only",
        "--quiet",
        "--host",
        host,
        "--port",
        str(port),
        str(DB_JSON),
    ]
    with tempfile.TemporaryFile() as output:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=DB_JSON.parent,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,  # its own process group: npx's children stop with it
            preexec_fn=_die_with_parent(),
        )
        try:
            await _wait_ready(process, host, port, output)
            yield JsonServerDemo(urls={"jsonplaceholder": url})
        finally:
            await _stop(process)


def _bindable_port(host: str, port: int) -> int:
    """``port`` (0: a free one) if it can be bound on ``host`` now; ``OSError`` naming it if not.

    Checked first because json-server on a taken port exits late, and until then whatever holds
    the port would accept the readiness probe.
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise OSError(exc.errno, f"json-server cannot listen on {host}:{port}: {exc.strerror}") from None
        bound: int = sock.getsockname()[1]
        return bound


async def _wait_ready(process: asyncio.subprocess.Process, host: str, port: int, output: IO[bytes]) -> None:
    """Wait until json-server accepts connections; ``OSError`` with its output if it exits or times out.

    json-server listens once it has loaded the data, so an accepted connection means it is ready.
    """
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while process.returncode is None:
                try:
                    _, writer = await asyncio.open_connection(host, port)
                except OSError:
                    await asyncio.sleep(0.1)
                    continue
                writer.close()
                await writer.wait_closed()
                return
    except TimeoutError:
        pass
    output.seek(0)
    tail = output.read()[-2000:].decode(errors="replace").strip()
    raise OSError(f"json-server did not start on {host}:{port} (exit status {process.returncode}): {tail}")


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM to json-server's process group, SIGKILL after ``STOP_GRACE_S``; waits for it to exit."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.returncode is not None:
            return
        # The group id is the pid (start_new_session), ours while asyncio has not reaped the leader.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), STOP_GRACE_S)
    await process.wait()


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook that has Linux send json-server SIGTERM when ``bff`` dies, even by SIGKILL."""
    if sys.platform != "linux":
        return None
    # Looked up before the fork: between fork and exec the child must not load anything.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig, sigterm = 1, int(signal.SIGTERM)

    def hook() -> None:
        prctl(pr_set_pdeathsig, sigterm, 0, 0, 0)

    return hook
