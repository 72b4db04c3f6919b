"""BFF_EVENT_LOOP: bff serve runs on uvloop by default, on the standard library's loop on request."""

from __future__ import annotations

import asyncio

import uvloop

from bff import event_loop
from tests.support.chinook import chinook_settings


async def _loop_type() -> type[asyncio.AbstractEventLoop]:
    return type(asyncio.get_running_loop())


def test_uvloop_is_the_default() -> None:
    """Without BFF_EVENT_LOOP the settings choose uvloop, and run() runs on a uvloop loop."""
    choice = chinook_settings({}).event_loop
    assert choice == "uvloop"
    assert event_loop.run(_loop_type(), choice) is uvloop.Loop


def test_asyncio_on_request() -> None:
    """BFF_EVENT_LOOP=asyncio runs on the standard library's loop."""
    choice = chinook_settings({"BFF_EVENT_LOOP": "asyncio"}).event_loop
    assert choice == "asyncio"
    loop_type = event_loop.run(_loop_type(), choice)
    assert issubclass(loop_type, asyncio.BaseEventLoop)
    assert not issubclass(loop_type, uvloop.Loop)


def test_run_returns_the_result() -> None:
    """run() gives back the coroutine's value, like asyncio.run."""

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert event_loop.run(answer(), "uvloop") == 42
