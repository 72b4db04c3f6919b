"""Record contracts: the fields a resource's records must hold, with their JSON types.

A resource declares the fields its types read (:class:`bff.Resource`'s ``fields``)::

    employees = Resource("customers", "employees", fields={
        "id": int, "firstName": str, "title": str | None, "reportsToId": int | None,
    })

Types are JSON's, written as Python types: ``str``, ``int``, ``float`` (any JSON number), ``bool``,
``list``, ``dict``, ``object`` (any value, null included), and ``X | None`` for a field that may be
null. A declared field must be *present* in every record, null or not: a service that renames
``reportsToId`` to ``reportsTo`` breaks the contract, though ``reportsToId`` may be null. Fields
not declared are ignored (a tolerant reader), so services may add fields freely.

Every answer the operation's loaders and a resource's lists read is checked (:meth:`RecordContract.check`).
An answer the entity cache hands out again is the very same list object, read by every operation
that hits it and never changed (the cache shares it): a contract remembers the last few answers that
held, by identity, and does not check them again.
A record that breaks its declaration is never handed to a type: the fields that would show it fail
with ``DOWNSTREAM_CONTRACT`` (one error per downstream answer, its ``extensions`` naming the
``service``, the ``resource`` and the ``fields``), never a silent null. Each breaking answer is
logged once, at WARNING, and counted per resource and field in the service client's
``contract_violations`` (:class:`~bff.counters.Counter`, ``bff_downstream_contract_violations_total``).
"""

from __future__ import annotations

import logging
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Union, get_args, get_origin

from bff.counters import Counter
from bff.errors import DownstreamContract

__all__ = ["JSON_TYPES", "Breach", "RecordContract", "contract_violations_counter"]

logger = logging.getLogger("bff.contract")

JSON_TYPES: Final[Mapping[type, frozenset[type]]] = {
    str: frozenset({str}),
    int: frozenset({int}),
    float: frozenset({int, float}),
    bool: frozenset({bool}),
    list: frozenset({list}),
    dict: frozenset({dict}),
}
"""The Python types a field may be declared with, and the decoded JSON values each accepts
(``bool`` is not an ``int`` here: ``true`` where a number is declared breaks the contract)."""

_NAMES: Final = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
}
_JSON_NAMES: Final = {**_NAMES, float: "number", type(None): "null"}
_SAMPLE_IDS: Final = 5
"""Ids of breaking records named in a message and a log line, at most."""
_HELD_ANSWERS: Final = 32
"""Answers that held a contract remembers (by identity) so as not to check them again, at most."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Final = _Missing()


def contract_violations_counter() -> Counter:
    """The counter a service client keeps of the records that broke their declaration."""
    return Counter(
        "bff_downstream_contract_violations_total",
        "Downstream records that broke their resource's declaration, by resource and field.",
        ("service", "resource", "field"),
    )


def _accepted(spec: object, name: str) -> tuple[frozenset[type] | None, str]:
    """The JSON value types ``spec`` accepts (``None``: any), and how to say it."""
    if spec is object or spec is Any:
        return None, "any value"
    if spec is None or spec is type(None):
        return frozenset({type(None)}), "null"
    if isinstance(spec, type) and spec in JSON_TYPES:
        return JSON_TYPES[spec], _NAMES[spec]
    if isinstance(spec, types.UnionType) or get_origin(spec) is Union:
        accepted: set[type] = set()
        said: list[str] = []
        for member in get_args(spec):
            member_types, member_said = _accepted(member, name)
            if member_types is None:
                return None, "any value"
            accepted |= member_types
            said.append(member_said)
        return frozenset(accepted), " or ".join(said)
    raise TypeError(
        f"field {name!r}: {spec!r} is not a JSON type (str, int, float, bool, list, dict, object, X | None)"
    )


@dataclass(frozen=True, slots=True)
class Breach:
    """The records of one answer that break their declaration, and the error their fields get."""

    error: DownstreamContract
    record_ids: frozenset[int]
    """``id()`` of each breaking record (entries that are not objects included)."""

    def broke(self, record: object) -> bool:
        """Whether ``record`` (the very object in the answer) is one of the breaking ones."""
        return id(record) in self.record_ids


class RecordContract:
    """The declared fields of one resource's records; built by :class:`bff.Resource`.

    ``fields`` maps each field name to its JSON type (see the module docstring); ``id_field`` is
    always checked, as ``int | str`` unless declared: a record the loaders cannot key is never
    dropped silently. Raises ``TypeError`` for a type that is not a JSON type.
    """

    __slots__ = ("_any", "_held", "_typed", "fields", "id_field")

    def __init__(self, fields: Mapping[str, object] | None = None, *, id_field: str = "id") -> None:
        declared: dict[str, object] = dict(fields or {})
        declared.setdefault(id_field, int | str)
        self.id_field = id_field
        self.fields: dict[str, str] = {}
        typed: list[tuple[str, frozenset[type]]] = []
        present: list[str] = []
        for name, spec in declared.items():
            accepted, said = _accepted(spec, name)
            self.fields[name] = said
            if accepted is None:
                present.append(name)
            else:
                typed.append((name, accepted))
        self._typed = tuple(typed)
        self._any = tuple(present)
        # id -> the answer itself: held, so its id is not reused while it is remembered.
        self._held: dict[int, Sequence[Any]] = {}

    def problems(self, record: object) -> list[tuple[str, str]]:
        """``(field, problem)`` for each way ``record`` breaks the declaration; empty when it holds."""
        if type(record) is not dict:
            return [("", f"{_JSON_NAMES.get(type(record), type(record).__name__)} where an object is due")]
        found: list[tuple[str, str]] = []
        for name, accepted in self._typed:
            value = record.get(name, _MISSING)
            if type(value) not in accepted:
                if value is _MISSING:
                    found.append((name, "missing"))
                else:
                    got = _JSON_NAMES.get(type(value), type(value).__name__)
                    found.append((name, f"{got} where {self.fields[name]} is declared"))
        for name in self._any:
            if name not in record:
                found.append((name, "missing"))
        return found

    def check(
        self, records: Sequence[Any], *, service: str, resource: str, counter: Counter | None = None
    ) -> Breach | None:
        """The breach of one downstream answer's ``records``, or ``None`` when every record holds.

        A breach is logged once (WARNING, naming the fields, how many records and a few ids) and
        counted in ``counter`` per field (labels: service, resource, field); its error names them too.
        A list that held before (the same object, as the entity cache hands it out) is not checked
        again: answers are shared between operations and never changed.
        """
        held = self._held
        if held.get(id(records)) is records:
            return None
        typed, present = self._typed, self._any
        broken: list[tuple[Any, list[tuple[str, str]]]] = []
        for record in records:
            if type(record) is dict:
                get = record.get
                if all(type(get(name, _MISSING)) in accepted for name, accepted in typed) and all(
                    name in record for name in present
                ):
                    continue
            broken.append((record, self.problems(record)))
        if not broken:
            if type(records) is list:
                if len(held) >= _HELD_ANSWERS:
                    held.clear()
                held[id(records)] = records
            return None
        by_problem: dict[tuple[str, str], int] = {}
        for _record, problems in broken:
            for problem in problems:
                by_problem[problem] = by_problem.get(problem, 0) + 1
        fields = sorted({field for field, _ in by_problem if field})
        details = "; ".join(
            f"{field or 'record'} {problem} ({count} of {len(records)})"
            for (field, problem), count in by_problem.items()
        )
        ids = [str(record.get(self.id_field)) for record, _ in broken[:_SAMPLE_IDS] if type(record) is dict]
        where = f"; ids {', '.join(ids)}" if ids else ""
        message = f"{service} service sent {resource} records that break their declaration: {details}{where}"
        logger.warning("%s", message)
        if counter is not None:
            for (field, _problem), count in by_problem.items():
                counter.inc(service, resource, field or "(record)", amount=count)
        error = DownstreamContract(message, service=service, resource=resource, fields=fields or None)
        return Breach(error, frozenset(id(record) for record, _ in broken))
