"""``Counter``: a count by label values that a metrics exporter can follow, and nothing more.

The kit counts a few things it must never lose sight of (records that break their declaration,
deprecated fields still in use). Each count lives on the object that owns the concern (a service
client, the operation pipeline), readable by tests; a metrics system attaches to it with
:meth:`Counter.observe` and sees every increment, so there is one place that counts and no second
metrics system::

    client.contract_violations.observe(lambda labels, amount: prom_counter.labels(*labels).inc(amount))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["Counter", "Observer"]

Observer = Callable[[tuple[str, ...], int], None]
"""``observer(label_values, amount)``: called after each increment."""


class Counter:
    """A monotonic count per combination of label values.

    ``name`` and ``documentation`` are what an exporter names the metric (Prometheus style,
    ``bff_..._total``); ``labels`` name the label values :meth:`inc` takes, in order.
    """

    __slots__ = ("_observers", "_values", "documentation", "labels", "name")

    def __init__(self, name: str, documentation: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = tuple(labels)
        self._values: dict[tuple[str, ...], int] = {}
        self._observers: list[Observer] = []

    def inc(self, *values: str, amount: int = 1) -> None:
        """Add ``amount`` (at least 0) to the count of ``values``, one per label; raises ``ValueError``
        for another number of values or a negative amount."""
        if len(values) != len(self.labels):
            raise ValueError(f"{self.name} takes {len(self.labels)} label values, got {len(values)}")
        if amount < 0:
            raise ValueError(f"{self.name} only goes up (got {amount})")
        self._values[values] = self._values.get(values, 0) + amount
        for observer in self._observers:
            observer(values, amount)

    def value(self, *values: str) -> int:
        """The count of ``values`` so far (0 when never incremented)."""
        return self._values.get(values, 0)

    def items(self) -> list[tuple[tuple[str, ...], int]]:
        """Every combination of label values counted so far, with its count."""
        return list(self._values.items())

    def observe(self, observer: Observer) -> None:
        """Call ``observer(values, amount)`` after every later increment."""
        self._observers.append(observer)
