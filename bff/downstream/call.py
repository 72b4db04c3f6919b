"""``Call``: what every downstream request made for one GraphQL operation carries along."""

from __future__ import annotations

from dataclasses import dataclass, field

from bff.downstream.freshness import Freshness


@dataclass(frozen=True, slots=True)
class Call:
    """The operation a downstream request is made for.

    ``request_id`` goes out as ``X-Request-Id``; ``headers`` are further headers forwarded to every
    service (e.g. ``Authorization``), as ``(name, value)`` pairs; ``deadline`` is the event loop
    time (``loop.time()``, seconds) by which the operation must be done, or ``None`` for no deadline.
    ``freshness`` collects what the operation's reads allow a response cache to keep
    (:mod:`bff.downstream.freshness`); each call made without one gets its own.
    """

    request_id: str
    headers: tuple[tuple[str, str], ...] = ()
    deadline: float | None = None
    freshness: Freshness = field(default_factory=Freshness, compare=False, repr=False)
