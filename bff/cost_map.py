"""Field costs: what each field of the schema costs, for the cost limit (``BFF_MAX_COST``).

The cost of an operation estimates how many resolver calls it makes, so it counts the work a
query asks for before any of it runs (see :mod:`bff.limits`):

- A field costs its *weight* each time it is resolved, and it is resolved once per item of every
  list above it. Leaf fields (scalars and enums) weigh 0: they are plain attributes. Every other
  field weighs 1 (it resolves through a DataLoader or a downstream call) unless this map says more.
- A field returning a list multiplies the cost of its selections by its *size*:

  1. the value of a *multiplier* argument (``first``) given as a literal;
  2. ``max_size`` when that argument is a variable (the value is unknown while validating, and the
     validation result is cached per document, so the worst case counts);
  3. ``size`` when the argument is absent, or for a list without arguments (the expected length);
  4. ``BFF_DEFAULT_LIST_SIZE`` for a list nothing prices.

Where a field's cost comes from, first found wins: the app's ``cost_map`` (``App.cost_map``, per
type and field), the field's own hint (``to_many(..., size=N)``, :func:`cost_hint` in a
``strawberry.field``'s ``metadata``, e.g. ``cost_hint(size=posts.list_size)`` for a field listing a
whole :class:`~bff.graph.resource.Resource`), the Relay rules below, the defaults.

- Relay plumbing weighs 0 and ``edges`` has size 1: the connection's ``first`` already counts its
  items (:data:`BY_TYPE_SUFFIX`).
- Introspection (``__schema``, ``__type``) costs like any other field, so a nested introspection
  query cannot multiply without bound; GraphiQL's full introspection query costs about 15,000.

Example (Chinook): ``customers(first: 59) { edges { node { invoices { lines { track { name genre { name
} } } } } } }`` costs ``1 + 59 x (1 + 7 x (1 + 14 x (1 + 1)))`` = 12,037: one page request, 59 invoice
lists of 7, 413 line lists of 14, and 5,782 tracks with their genres.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from graphql import GraphQLField

from bff.compat import strawberry_field_of

__all__ = [
    "BY_TYPE_SUFFIX",
    "COST_METADATA_KEY",
    "MAX_PAGE_SIZE",
    "PAGE",
    "PAGE_SIZE",
    "CostMap",
    "FieldCost",
    "cost_hint",
    "field_cost",
]

PAGE_SIZE = 20
"""Items of a connection without ``first`` (:data:`bff.graph.relay.DEFAULT_PAGE_SIZE`)."""
MAX_PAGE_SIZE = 100
"""Most items of a connection (:data:`bff.graph.relay.MAX_PAGE_SIZE`): a variable ``first`` counts this."""

COST_METADATA_KEY: Final = "bff.cost"
"""Where a field keeps its :class:`FieldCost` hint, in ``StrawberryField.metadata``."""


@dataclass(frozen=True, slots=True)
class FieldCost:
    """The cost of one field: its weight, and for a list its size (see the module docstring)."""

    weight: int = 1
    size: int | None = None
    """Expected items of the list when no multiplier argument bounds it."""
    multipliers: tuple[str, ...] = ()
    """Arguments whose value is the number of items."""
    max_size: int | None = None
    """Items counted when a multiplier argument is a variable."""


PAGE = FieldCost(size=PAGE_SIZE, multipliers=("first",), max_size=MAX_PAGE_SIZE)
"""A Relay connection field: ``first`` items, 20 without it, 100 when ``first`` is a variable."""

CostMap = Mapping[str, Mapping[str, FieldCost]]
"""Per type name and field name, the field's cost: what ``App.cost_map`` holds."""


def cost_hint(
    *,
    weight: int = 1,
    size: int | None = None,
    multipliers: tuple[str, ...] = (),
    max_size: int | None = None,
) -> dict[str, Any]:
    """``metadata`` pricing a ``strawberry.field``: ``strawberry.field(metadata=cost_hint(size=100))``."""
    return {
        COST_METADATA_KEY: FieldCost(weight=weight, size=size, multipliers=multipliers, max_size=max_size)
    }


BY_TYPE_SUFFIX: Mapping[str, Mapping[str, FieldCost]] = {
    "Connection": {"edges": FieldCost(weight=0, size=1), "pageInfo": FieldCost(weight=0)},
    "Edge": {"node": FieldCost(weight=0)},
}
"""Rules for every type whose name ends with the key (the generic Relay types)."""


def field_cost(
    type_name: str, field_name: str, definition: GraphQLField | None, cost_map: CostMap
) -> FieldCost | None:
    """The cost of ``type_name.field_name`` (see the module docstring), or ``None`` for the defaults."""
    explicit = cost_map.get(type_name, {}).get(field_name)
    if explicit is not None:
        return explicit
    if definition is not None and (field := strawberry_field_of(definition)) is not None:
        hint = field.metadata.get(COST_METADATA_KEY)
        if isinstance(hint, FieldCost):
            return hint
    for suffix, fields in BY_TYPE_SUFFIX.items():
        if type_name.endswith(suffix) and field_name in fields:
            return fields[field_name]
    return None
