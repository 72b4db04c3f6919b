"""The counters of compiled execution (:mod:`bff.operation.compiled`): runs, and fallbacks by reason.

Apart from the executor so that metrics (:mod:`bff.telemetry.metrics`) can declare them without
importing the execution machinery.
"""

from __future__ import annotations

from bff.counters import Counter

__all__ = ["compiled_counters"]


def compiled_counters() -> tuple[Counter, Counter]:
    """Fresh ``bff_compiled_runs_total`` and ``bff_compiled_fallbacks_total{reason}`` counters."""
    return (
        Counter("bff_compiled_runs_total", "Query operations run by their compiled plan."),
        Counter(
            "bff_compiled_fallbacks_total",
            "Operations run by graphql-core instead of a compiled plan, by reason.",
            ("reason",),
        ),
    )
