"""The runtime budget of one operation: items it may resolve, time it may take, and fair CPU slices.

Static cost (:mod:`bff.limits`) is a guess made before any data is seen; a playlist priced at 500
tracks may hold 3,290. The budget is the guarantee, checked while the operation runs:

- **Items.** Every node a relationship field, a list or a connection hands out counts one item
  (``BFF_MAX_ITEMS`` per operation, and per subscription event). Past it the fields that would resolve
  more fail with ``OPERATION_BUDGET_EXCEEDED``; the rest of the response still comes back.
- **Time.** Past the operation's deadline (``BFF_OPERATION_TIMEOUT_MS``) fields fail with
  ``OPERATION_TIMEOUT``, though graphql-core would go on completing loaded records synchronously.
- **Slices.** Records already loaded resolve without awaiting (:mod:`bff.graph.relations`), so a wide
  operation can complete for seconds without giving the event loop a turn. Once it has resolved
  synchronously for a slice of ``SLICE_S``, with no turn of the loop in between, fields return an
  awaitable that first yields to the loop; a new slice starts once the loop has turned. No operation
  then keeps others (or ``/healthz``) waiting for much longer than a slice.

One :class:`Budget` per operation, kept in its context; nothing here is shared between operations.
"""

from __future__ import annotations

import asyncio
from typing import Final

from bff.errors import BFFError

__all__ = ["SLICE_S", "Budget", "BudgetExceeded", "OperationTimeout"]

SLICE_S: Final = 0.02
"""Longest run of synchronous resolution before yielding to the event loop, in seconds."""


class BudgetExceeded(BFFError):
    """The operation resolved more items than ``BFF_MAX_ITEMS`` allows; narrow the selection."""

    code = "OPERATION_BUDGET_EXCEEDED"


class OperationTimeout(BFFError):
    """The operation ran past its deadline (``BFF_OPERATION_TIMEOUT_MS``)."""

    code = "OPERATION_TIMEOUT"


class Budget:
    """What one operation may still spend.

    ``max_items`` is the item budget; ``deadline`` the loop time (``loop.time()``, seconds) by which
    the operation must be done, or ``None``.
    """

    __slots__ = (
        "_exceeded",
        "_loop",
        "_slice_end",
        "_timeout",
        "_turned",
        "deadline",
        "items",
        "max_items",
    )

    def __init__(self, max_items: int, deadline: float | None) -> None:
        self.max_items = max_items
        self.deadline = deadline
        self.items = 0
        self._loop = asyncio.get_running_loop()
        self._slice_end = self._loop.time() + SLICE_S
        self._turned = False
        self._loop.call_soon(self._turn)
        self._exceeded: BudgetExceeded | None = None
        self._timeout: OperationTimeout | None = None

    def spend(self, items: int) -> None:
        """Count ``items`` resolved; raises ``OPERATION_BUDGET_EXCEEDED`` past the item budget and
        ``OPERATION_TIMEOUT`` past the deadline (the same exception each time, so the client gets one
        error for all the fields it stopped)."""
        self.items += items
        if self.items > self.max_items:
            if self._exceeded is None:
                self._exceeded = BudgetExceeded(
                    f"The operation resolved more than {self.max_items} items, the limit; "
                    "select fewer or smaller lists.",
                    limit=self.max_items,
                )
            raise self._exceeded
        if self.deadline is not None and self._loop.time() > self.deadline:
            if self._timeout is None:
                self._timeout = OperationTimeout("The operation ran past its deadline.")
            raise self._timeout

    def must_yield(self) -> bool:
        """Whether the operation has run synchronously for a whole slice: yield to the loop first."""
        now = self._loop.time()
        if now < self._slice_end:
            return False
        if self._turned:
            # The loop has turned since the slice began (the operation awaited something): the work
            # since then is a new run, with a slice of its own.
            self._turned = False
            self._slice_end = now + SLICE_S
            self._loop.call_soon(self._turn)
            return False
        # Until the loop turns, every field asking is deferred: this run does no more of our work.
        return True

    def _turn(self) -> None:
        self._turned = True

    async def pause(self) -> None:
        """Yield to the event loop once (what a deferred field awaits before it resolves)."""
        await asyncio.sleep(0)
