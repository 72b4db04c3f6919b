"""The ``bff`` command as a test runs it: a real process, started until ready and stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

__all__ = ["BFF", "START_TIMEOUT_S", "clean_env", "start", "stop"]

BFF = [sys.executable, "-m", "bff.cli"]
"""argv of the ``bff`` command, run by the test's interpreter."""
START_TIMEOUT_S = 30.0
"""Seconds ``bff`` has to print its GraphiQL URL."""


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any BFF_ variables, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BFF_")}
    env.update(extra)
    return env


async def start(
    args: list[str], env: Mapping[str, str], *, cwd: Path | None = None, printed: list[str] | None = None
) -> tuple[asyncio.subprocess.Process, str]:
    """Start ``bff ARGS`` (in ``cwd``) and return the process and the GraphiQL URL it prints when ready.

    The lines it printed before that one are appended to ``printed``, when given.
    """
    process = await asyncio.create_subprocess_exec(
        *BFF, *args, env=dict(env), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while True:
                line = (await process.stdout.readline()).decode()
                if not line:
                    stderr = await process.stderr.read() if process.stderr else b""
                    pytest.fail(f"bff exited before it was ready: {stderr.decode()[-2000:]}")
                if line.startswith("GraphiQL: "):
                    return process, line.removeprefix("GraphiQL: ").strip()
                if printed is not None:
                    printed.append(line.rstrip("\n"))
    except BaseException:
        process.kill()
        await process.wait()
        raise


async def stop(process: asyncio.subprocess.Process) -> int:
    """Send SIGTERM and return the exit code (killing the process if it does not stop in 10 s)."""
    process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(10):
            _, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail("bff did not stop within 10 s of SIGTERM")
    assert b"Traceback" not in stderr, stderr.decode()
    assert process.returncode is not None
    return process.returncode
