"""Operation limits as validation rules: measures, codes, and that the validation cache still hits."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import OperationDefinitionNode, parse

from bff.compat import graphql_core_schema
from bff.cost_map import MAX_PAGE_SIZE, PAGE_SIZE
from bff.graph import relay
from bff.graph.schema import build_schema
from bff.limits import OperationMeasure, measure_operation
from bff.settings import Settings
from tests.support.chinook import chinook_app, chinook_settings

ALL_CUSTOMERS = (
    "{ customers(first: 59) { edges { node {"
    " invoices { total lines { track { name genre { name } } } } } } } }"
)


def measure(query: str, settings: Settings | None = None) -> OperationMeasure:
    """Depth, cost and root fields of the first operation of ``query``."""
    settings = settings or chinook_settings({})
    schema = graphql_core_schema(build_schema(chinook_app, settings))
    document = parse(query)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    return measure_operation(
        schema,
        document,
        operation,
        default_list_size=settings.default_list_size,
        cost_map=chinook_app.cost_map,
    )


async def execute(settings: Settings, query: str, variables: dict[str, Any] | None = None) -> Any:
    """Run ``query`` on a schema built from ``settings`` (only fields that need no context)."""
    return await build_schema(chinook_app, settings).execute(query, variable_values=variables)


def codes(result: Any) -> list[str]:
    """The ``extensions.code`` of each error of a result."""
    return [error.extensions.get("code") for error in result.errors or ()]


def test_cost_map_page_sizes_match_the_schema() -> None:
    """The cost map counts connections with the page sizes the resolvers enforce."""
    assert (PAGE_SIZE, MAX_PAGE_SIZE) == (relay.DEFAULT_PAGE_SIZE, relay.MAX_PAGE_SIZE)


def test_cost_multiplies_first_and_list_sizes() -> None:
    """``first`` multiplies, unbounded lists count their map size: the docstring's example costs 12,037."""
    assert measure(ALL_CUSTOMERS) == OperationMeasure(depth=8, cost=12_037, root_fields=1)
    assert measure(ALL_CUSTOMERS).cost < chinook_settings({}).max_cost
    assert measure("{ customers { edges { node { supportRep { id } } } } }").cost == 1 + PAGE_SIZE
    assert measure("query($n: Int) { tracks(first: $n) { edges { node { album { id } } } } }").cost == 101
    assert measure("{ genres { name } }").cost == 1


def test_unknown_lists_count_the_default_size() -> None:
    """A list the map does not know counts ``BFF_DEFAULT_LIST_SIZE`` items."""
    query = '{ employee(id: "1") { reportsTo { id } } }'
    assert measure(query).cost == 2
    settings = chinook_settings({"BFF_DEFAULT_LIST_SIZE": "3"})
    assert measure("{ __schema { types { fields { name } } } }", settings).cost == 1 + 1 + 3
    assert measure("{ __schema { types { fields { name } } } }").cost == 1 + 1 + 10


def test_fragments_are_measured_once_without_blow_up() -> None:
    """A fragment bomb (each fragment spreading the next twice) measures in linear time."""
    levels = 40
    fragments = " ".join(
        f"fragment F{i} on Genre {{ a{i}: name ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    query = f"{{ genres {{ ...F0 }} }} {fragments} fragment F{levels} on Genre {{ id }}"
    result = measure(query)
    assert result.depth == 2
    assert result.cost == 1


def test_fragment_cycles_do_not_hang() -> None:
    """Cyclic fragments (a validation error of their own) measure without recursing forever."""
    query = "{ genres { ...A } } fragment A on Genre { ...B } fragment B on Genre { ...A }"
    assert measure(query).depth == 1


@pytest.mark.parametrize(
    ("environ", "query", "code", "detail"),
    [
        (
            {"BFF_MAX_DEPTH": "2"},
            '{ genres { name } __type(name: "Genre") { fields { name } } }',
            "QUERY_TOO_DEEP",
            "depth",
        ),
        ({"BFF_MAX_COST": "1"}, "{ __schema { types { name } } }", "QUERY_TOO_COMPLEX", "cost"),
        (
            {"BFF_MAX_ALIASES": "2"},
            "{ a: __typename b: __typename c: __typename }",
            "TOO_MANY_ALIASES",
            "aliases",
        ),
        (
            {"BFF_MAX_ROOT_FIELDS": "2"},
            "{ __typename ...R } fragment R on Query { a: __typename b: __typename }",
            "TOO_MANY_ROOT_FIELDS",
            "rootFields",
        ),
        (
            {"BFF_MAX_TOKENS": "10"},
            "{ a: __typename b: __typename c: __typename d: __typename }",
            "TOO_MANY_TOKENS",
            None,
        ),
        (
            {"BFF_INTROSPECTION": "false"},
            "{ __schema { queryType { name } } }",
            "INTROSPECTION_DISABLED",
            None,
        ),
    ],
    ids=["depth", "cost", "aliases", "root-fields", "tokens", "introspection"],
)
async def test_each_limit_has_its_code_and_message(
    environ: dict[str, str], query: str, code: str, detail: str | None
) -> None:
    """Each limit fails with its own code, and the message names the limit and the value."""
    result = await execute(chinook_settings(environ), query)
    assert result.data is None
    assert codes(result) == [code]
    error = result.errors[0]
    limit = next(iter(environ.values()))
    if detail is not None:
        assert str(error.extensions[detail]) in error.message
        assert str(error.extensions["limit"]) == limit
        assert limit in error.message


async def test_limits_within_bounds_pass() -> None:
    """``__typename`` stays allowed with introspection off, and limits at their value pass."""
    settings = chinook_settings({"BFF_INTROSPECTION": "false", "BFF_MAX_ALIASES": "2"})
    result = await execute(settings, "{ a: __typename b: __typename }")
    assert result.errors is None
    assert result.data == {"a": "Query", "b": "Query"}


async def test_validation_cache_hits_with_the_limit_rules() -> None:
    """The rule classes are built once per schema, so repeating a document hits the validation cache."""
    settings = chinook_settings({"BFF_MAX_DEPTH": "7", "BFF_INTROSPECTION": "false"})
    schema = build_schema(chinook_app, settings)
    cache = schema.validated
    assert cache is not None
    query = "query CacheProof { a: __typename }"
    await schema.execute(query)
    before = (cache.hits, cache.misses)
    for _ in range(5):
        result = await schema.execute(query)
        assert result.errors is None
    assert (cache.hits - before[0], cache.misses - before[1]) == (5, 0)
