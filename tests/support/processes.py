"""The ``bff`` command as a child process: start it, wait until it is ready, query it, stop it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx
import pytest

BFF = (sys.executable, "-m", "bff.cli")
"""``bff`` from the test's own environment."""

START_TIMEOUT_S = 30.0


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any BFF_ variables, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BFF_")}
    env.update(extra)
    return env


async def start_lines(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    ready: Callable[[list[str]], bool],
    cwd: Path | None = None,
) -> tuple[asyncio.subprocess.Process, list[str]]:
    """Start ``argv`` and return the process and its stdout lines once ``ready(lines)`` is true.

    Fails the test, with the end of stderr, when the process exits first or is not ready within
    ``START_TIMEOUT_S`` seconds (it is killed then).
    """
    process = await asyncio.create_subprocess_exec(
        *argv, env=dict(env), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while True:
                line = (await process.stdout.readline()).decode()
                if not line:
                    stderr = await process.stderr.read() if process.stderr else b""
                    pytest.fail(f"{argv[0]} exited before it was ready: {stderr.decode()[-2000:]}")
                lines.append(line.rstrip("\n"))
                if ready(lines):
                    return process, lines
    except BaseException:
        process.kill()
        await process.wait()
        raise


async def start_server(
    argv: Sequence[str], env: Mapping[str, str], *, cwd: Path | None = None
) -> tuple[asyncio.subprocess.Process, str]:
    """Start a ``bff serve``/``bff demo`` command; return it and the GraphiQL URL it prints when ready."""
    process, lines = await start_lines(
        argv, env, ready=lambda lines: lines[-1].startswith("GraphiQL: "), cwd=cwd
    )
    return process, lines[-1].removeprefix("GraphiQL: ").strip()


async def start(
    args: Sequence[str], env: Mapping[str, str], *, cwd: Path | None = None, printed: list[str] | None = None
) -> tuple[asyncio.subprocess.Process, str]:
    """Start ``bff ARGS`` (in ``cwd``); return it and the GraphiQL URL it prints when ready.

    The lines it printed before that one are appended to ``printed``, when given.
    """
    process, lines = await start_lines(
        [*BFF, *args], env, ready=lambda lines: lines[-1].startswith("GraphiQL: "), cwd=cwd
    )
    if printed is not None:
        printed.extend(lines[:-1])
    return process, lines[-1].removeprefix("GraphiQL: ").strip()


async def post(url: str, body: Mapping[str, str]) -> dict[str, object]:
    """POST a GraphQL request to ``url`` and return the decoded answer."""
    async with httpx.AsyncClient() as client:
        response = await client.post(url, json=dict(body))
    result: dict[str, object] = response.json()
    return result


async def stop(process: asyncio.subprocess.Process) -> int:
    """Send SIGTERM and return the exit code (killing the process if it does not stop in 10 s).

    Fails the test when the process printed a traceback.
    """
    process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(10):
            _, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail("the process did not stop within 10 s of SIGTERM")
    assert b"Traceback" not in stderr, stderr.decode()
    assert process.returncode is not None
    return process.returncode
