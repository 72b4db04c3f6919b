"""The event loop ``bff serve`` runs on: uvloop by default, the standard library's on request.

uvloop (libuv) runs the same aiohttp server with cheaper socket writes and callbacks: about a fifth
of a small request's cost is the loop's own (``bench/README.md``). Where it is not installed (it has
no Windows build) the standard library's loop runs instead.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

__all__ = ["loop_factory", "run"]

T = TypeVar("T")


def loop_factory(choice: Literal["uvloop", "asyncio"]) -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes the loop ``choice`` names (``BFF_EVENT_LOOP``); uvloop's only when it is installed."""
    if choice == "uvloop" and importlib.util.find_spec("uvloop") is not None:
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], choice: Literal["uvloop", "asyncio"]) -> T:
    """Run ``main`` to its end on a new loop of ``choice``, as :func:`asyncio.run` does."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)
