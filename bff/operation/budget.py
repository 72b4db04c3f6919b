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
  awaitable that waits at the operation's gate (:meth:`Budget.pause`). The gate lets waiting fields
  go a batch per turn of the loop, the batch sized so a turn takes about a slice; waking them all at
  once would put all their work in one turn again. No operation then keeps others (or ``/healthz``)
  waiting for much longer than a slice.

One :class:`Budget` per operation, kept in its context; nothing here is shared between operations.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Final

from bff.errors import BFFError

__all__ = ["SLICE_S", "Budget", "BudgetExceeded", "OperationTimeout"]

SLICE_S: Final = 0.02
"""Longest run of synchronous resolution before yielding to the event loop, in seconds."""

MAX_BATCH: Final = 4_096
"""Most waiting fields the gate lets go in one turn of the loop."""


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
        "_batch",
        "_exceeded",
        "_last_release",
        "_loop",
        "_slice_end",
        "_timeout",
        "_turned",
        "_waiters",
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
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._batch = 64
        self._last_release: float | None = None

    def spend(self, items: int) -> None:
        """Count ``items`` resolved; raises ``OPERATION_BUDGET_EXCEEDED`` past the item budget and
        ``OPERATION_TIMEOUT`` past the deadline (the same exception each time, so the client gets one
        error for all the fields it stopped)."""
        self.items += items
        if self.items > self.max_items:
            raise self._over_budget()
        if self.deadline is not None and self._loop.time() > self.deadline:
            if self._timeout is None:
                self._timeout = OperationTimeout("The operation ran past its deadline.")
            raise self._timeout

    def check_projected(self, items: int) -> None:
        """Refuse, before resolving any of them, ``items`` more than the budget has left: raises
        ``OPERATION_BUDGET_EXCEEDED`` (a list field's prefetch knows its subtree's size in advance)."""
        if self.items + items > self.max_items:
            raise self._over_budget()

    def _over_budget(self) -> BudgetExceeded:
        """The operation's one ``OPERATION_BUDGET_EXCEEDED`` error, made the first time it is needed."""
        if self._exceeded is None:
            self._exceeded = BudgetExceeded(
                f"The operation resolved more than {self.max_items} items, the limit; "
                "select fewer or smaller lists.",
                limit=self.max_items,
            )
        return self._exceeded

    @property
    def exhausted(self) -> bool:
        """Whether the item budget or the deadline is spent: what is still resolved is null, quietly
        (the one error already says why, and thousands of copies would cost what the budget saves)."""
        return self._exceeded is not None or self._timeout is not None

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
        """Wait at the operation's gate until a later turn of the loop lets this field go on."""
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        if len(self._waiters) == 1 and self._last_release is None:
            self._loop.call_soon(self._release)
        await waiter

    def _release(self) -> None:
        """Let the next batch of waiting fields go, sizing it by how long the last turn took."""
        now = self._loop.time()
        if self._last_release is not None:
            took = now - self._last_release
            if took < SLICE_S / 2:
                self._batch = min(self._batch * 2, MAX_BATCH)
            elif took > SLICE_S:
                self._batch = max(1, self._batch // 2)
        self._slice_end = now + SLICE_S
        self._turned = False
        waiters = self._waiters
        for _ in range(min(self._batch, len(waiters))):
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        if waiters:
            self._last_release = now
            # Scheduled after the wake-ups just made: it runs once the fields let go have run.
            self._loop.call_soon(self._release)
        else:
            self._last_release = None
