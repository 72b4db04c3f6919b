"""A redis-server of the test's own, on a free port, that a test may stop, kill and start again.

Tests never touch a Redis they did not start (the machine's 6379 is shared). Each test module that
needs one uses the ``redis_server`` fixture (one server per module, no persistence); each test or
BFF takes its own key prefix (:func:`prefix`). Without ``redis-server`` on PATH the tests skip, and
fail under ``CI=true`` (:func:`tests.support.tools.missing`).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.support.tools import missing

__all__ = ["RedisServer", "free_port", "prefix", "redis_server"]

START_TIMEOUT_S = 10.0


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prefix(name: str) -> str:
    """A key prefix no other test uses: ``t-<name>-<random>``."""
    return f"t-{name}-{uuid.uuid4().hex[:8]}"


class RedisServer:
    """One ``redis-server`` child on 127.0.0.1:``port``, without persistence."""

    def __init__(self, port: int, *, args: Sequence[str] = (), workdir: Path) -> None:
        self.port = port
        self.args = list(args)
        self.workdir = workdir
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def url_for(self, user: str, password: str) -> str:
        """The URL of an ACL user."""
        return f"redis://{user}:{password}@127.0.0.1:{self.port}/0"

    def client(self) -> Redis:
        """A new client of this server (close it)."""
        return Redis.from_url(self.url)

    async def start(self) -> None:
        """Start the server (again, on the same port) and wait until it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            missing("redis-server")
        self.process = await asyncio.create_subprocess_exec(
            *[
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = self.client()
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while True:
                    try:
                        if await client.ping():
                            return
                    except Exception:  # refused (a ConnectionError) until it listens
                        if self.process.returncode is not None:
                            pytest.fail(f"redis-server exited with {self.process.returncode}")
                    await asyncio.sleep(0.02)
        finally:
            await client.aclose()

    async def stop(self, *, kill: bool = False) -> None:
        """Stop the server (SIGKILL with ``kill``, else SIGTERM) and wait for it to exit."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        async with asyncio.timeout(10):
            await process.wait()


async def _started(tmp_path_factory: pytest.TempPathFactory, args: Sequence[str] = ()) -> RedisServer:
    server = RedisServer(free_port(), args=args, workdir=tmp_path_factory.mktemp("redis"))
    await server.start()
    return server


@pytest.fixture(scope="module")
async def redis_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RedisServer]:
    """A redis-server of this test module's own (free port, no persistence), stopped after it."""
    server = await _started(tmp_path_factory)
    try:
        yield server
    finally:
        await server.stop()
