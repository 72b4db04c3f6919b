"""The compiled plans of an app's documents (:mod:`bff.operation.plan`), and when a run gets one.

Plans are kept per document text (bounded in bytes, as the parse cache), per operation, and per
values of the ``@skip``/``@include`` variables. A run of an operation gets its plan, compiled on the
first run, or ``None`` (counted in ``bff_compiled_fallbacks_total{reason}``) when graphql-core must
run it: what the document asks is not covered (:mod:`bff.operation.plan` names those reasons), or the
run itself is not: ``middleware`` when a schema extension resolves fields, ``abort_signal``, ``hooks``,
``error_propagation`` when the operation disables it, ``no_source`` for a document without its text,
``conditions`` past :data:`MAX_CONDITIONS` ``@skip``/``@include`` variables, ``condition_values``
when graphql-core refuses the values of the run's ``@skip``/``@include`` arguments (an explicit
``null`` for a variable with a default), which it reports where it collects that selection. Runs by a plan are
counted in ``bff_compiled_runs_total``.
"""

from __future__ import annotations

from typing import Any, Final

from graphql import DocumentNode, GraphQLError

from bff.operation.caches import TextCache
from bff.operation.fallbacks import compiled_counters
from bff.operation.plan import Plan, Unsupported, compile_plan, condition_variables

__all__ = ["MAX_CONDITIONS", "PLAN_BYTES_PER_SOURCE_BYTE", "CompiledPlans"]

MAX_CONDITIONS: Final = 6
"""Most ``@skip``/``@include`` variables a compiled document may have (a plan per combination)."""

PLAN_BYTES_PER_SOURCE_BYTE: Final = 40
"""Rough memory of the plans of a document per byte of its text (its syntax tree's, and more)."""


class _Operation:
    """The plans of one operation of a document, by values of its condition variables."""

    __slots__ = ("conditions", "plans")

    def __init__(self, conditions: tuple[str, ...]) -> None:
        self.conditions = conditions
        self.plans: dict[tuple[Any, ...], Plan | str] = {}


class CompiledPlans:
    """The plans of an app's documents (bounded in bytes, as the parse cache), with their counters."""

    def __init__(self, max_bytes: int) -> None:
        # Keyed by the document's text: the parse cache hands out the same string each time, whose
        # hash Python keeps, so a lookup does not hash the text again.
        self._documents: TextCache[dict[str, _Operation]] = TextCache(
            max_bytes, weight=PLAN_BYTES_PER_SOURCE_BYTE
        )
        self.runs, self.fallbacks = compiled_counters()

    def plan(self, executor: Any) -> Plan | None:
        """The plan of ``executor``'s operation (a graphql-core ``Executor``), or ``None`` when it
        runs on graphql-core (the fallback counted)."""
        reason = _runtime_reason(executor)
        if reason is not None:
            self.fallbacks.inc(reason)
            return None
        operation = executor.operation
        loc = operation.loc
        if loc is None:
            self.fallbacks.inc("no_source")
            return None
        operations = self._documents.get_or_make(loc.source.body, _no_operations)
        name = operation.name.value if operation.name is not None else ""
        document = operations.get(name)
        if document is None:
            document = operations[name] = _Operation(_conditions(executor))
        if len(document.conditions) > MAX_CONDITIONS:
            self.fallbacks.inc("conditions")
            return None
        coerced = executor.variable_values.coerced
        key = tuple(coerced.get(variable) for variable in document.conditions)
        found = document.plans.get(key)
        if found is None:
            try:
                found = compile_plan(
                    executor.schema,
                    executor.fragments,
                    operation,
                    executor.variable_values,
                    hide_suggestions=executor.hide_suggestions,
                )
            except Unsupported as unsupported:
                found = unsupported.reason
            except GraphQLError:
                # Collecting every selection ahead would make a field error of graphql-core's (the
                # selection's parent null) a request error without data.
                found = "condition_values"
            document.plans[key] = found
        if isinstance(found, str):
            self.fallbacks.inc(found)
            return None
        self.runs.inc()
        return found


def _no_operations(_text: str) -> dict[str, _Operation]:
    return {}


def _conditions(executor: Any) -> tuple[str, ...]:
    """The condition variables of the executor's document (its fragments' and its operation's)."""
    definitions = [executor.operation, *(details.definition for details in executor.fragments.values())]
    return condition_variables(DocumentNode(definitions=tuple(definitions)))


def _runtime_reason(executor: Any) -> str | None:
    """Why this run cannot use a plan, whatever the document: a fallback reason, or ``None``."""
    manager = executor.middleware_manager
    if manager is not None and manager.middlewares:
        return "middleware"
    if executor.abort_signal is not None:
        return "abort_signal"
    if executor.hooks is not None:
        return "hooks"
    if not executor.error_propagation:
        return "error_propagation"
    return None
