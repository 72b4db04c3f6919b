"""Compiled execution (bff.operation.plan, bff.operation.compiled) against graphql-core's own, on a
schema made to fail in every way a field can: errors, nulls in non-null places, async resolvers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import strawberry
from graphql import Executor, Undefined, parse
from strawberry.permission import BasePermission

from bff.compat import graphql_core_schema
from bff.graph.schema import build_schema
from bff.operation.compiled import compiled_executor
from bff.operation.plan import ATTRIBUTE, OBJECT, RESOLVER, TYPENAME, compile_plan, condition_variables
from bff.operation.plan_cache import CompiledPlans
from bff.subscriptions import PerEventExecutor
from tests.support.chinook import chinook_app, chinook_settings


class Nobody(BasePermission):
    message = "Not for you."

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return False


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Item(Named):
    id: strawberry.ID
    size: int | None
    label: str
    secret: str | None = strawberry.field(default="hidden", permission_classes=[Nobody])

    @strawberry.field
    def broken(self) -> str | None:
        raise ValueError(f"broken {self.id}")

    @strawberry.field
    def required(self) -> str:
        return None  # type: ignore[return-value]  # a non-null field answering null

    @strawberry.field
    async def later(self, times: int = 1) -> str:
        await asyncio.sleep(0)
        return self.label * times

    @strawberry.field
    async def later_broken(self) -> int:
        await asyncio.sleep(0)
        raise ValueError("later broken")

    @strawberry.field
    def tags(self) -> list[str | None]:
        return ["a", None, "c"]

    @strawberry.field
    def strict_tags(self) -> list[str]:
        return ["a", None]  # type: ignore[list-item]


@strawberry.type
class Box:
    items: list[Item]
    strict: list[Item]


def items() -> list[Item]:
    return [
        Item(id=strawberry.ID(str(n)), name=f"n{n}", size=n if n % 2 else None, label=f"l{n}")
        for n in range(3)
    ]


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return items()

    @strawberry.field
    async def box(self) -> Box | None:
        return Box(items=items(), strict=items())

    @strawberry.field
    def item(self, id: strawberry.ID) -> Item | None:
        return next((item for item in items() if item.id == id), None)

    @strawberry.field
    def named(self) -> list[Named]:
        return list(items())

    @strawberry.field
    def undefined(self) -> list[str | None]:
        """graphql-core's Undefined, which it completes as null, as a resolver result and an item."""
        return [Undefined, "x"]  # type: ignore[list-item]

    @strawberry.field
    def ghosts(self) -> list[Item | None]:
        """Items whose non-null attributes are null or not even there."""
        return [
            Item(id=strawberry.ID("g"), name="ghost", size=1, label=None),  # type: ignore[arg-type]
            Item(id=None, name="nameless", size=None, label="x"),  # type: ignore[arg-type]
        ]

    @strawberry.field
    def greet(self, name: str = "you") -> str:
        return f"hello {name}"


@strawberry.type
class Mutation:
    @strawberry.mutation
    def touch(self) -> int:
        return 1


def schemas() -> tuple[strawberry.Schema, strawberry.Schema, CompiledPlans]:
    plans = CompiledPlans(1_000_000)
    compiled = strawberry.Schema(Query, Mutation, execution_context_class=compiled_executor(plans))
    plain = strawberry.Schema(Query, Mutation, execution_context_class=PerEventExecutor)
    return compiled, plain, plans


async def both(query: str, variables: dict[str, Any] | None = None) -> tuple[str, CompiledPlans]:
    """The formatted result of ``query`` by compiled execution; asserts graphql-core's is the same."""
    compiled, plain, plans = schemas()
    results = []
    for schema in (compiled, plain):
        result = await schema.execute(query, variable_values=variables)
        errors = [error.formatted for error in result.errors or ()]
        results.append(json.dumps({"data": result.data, "errors": errors}, sort_keys=True))
    assert results[0] == results[1]
    return results[0], plans


QUERIES = [
    "{ items { id name size label __typename } }",
    "{ first: items { id } second: items { key: id label } }",
    "{ items { ... on Item { id } ...F } } fragment F on Item { name label }",
    "{ items { broken id } }",
    "{ items { id required } }",
    "{ box { items { id required } } }",
    "{ box { strict { id laterBroken } items { later(times: 2) } } }",
    "{ items { later laterBroken tags strictTags } }",
    "query($id: ID!) { item(id: $id) { id label } }",
    '{ greet other: greet(name: "me") }',
    "{ items { later(times: 3) } }",
    "{ ghosts { label id name size } }",
    "{ ghosts { id } items { size } }",
    "{ items { id secret } }",
    "{ undefined }",
]


@pytest.mark.parametrize("query", QUERIES)
async def test_compiled_matches_graphql_core(query: str) -> None:
    """Data, errors (message, path, locations) and their order are graphql-core's."""
    formatted, plans = await both(query, {"id": "1"})
    assert json.loads(formatted)["data"] is not None or "errors" in formatted
    assert plans.runs.value() == 1
    assert plans.fallbacks.items() == []


async def test_skip_and_include_make_one_plan_per_combination() -> None:
    """The same document with other @skip/@include values gets its own plan; other variables do not."""
    compiled, _, plans = schemas()
    query = (
        "query($s: Boolean!, $i: Boolean!, $id: ID!)"
        " { item(id: $id) { id @skip(if: $s) label @include(if: $i) } }"
    )
    answers = []
    for skip, include, item in [
        (True, True, "1"),
        (False, True, "2"),
        (True, True, "0"),
        (False, False, "1"),
    ]:
        result = await compiled.execute(query, variable_values={"s": skip, "i": include, "id": item})
        answers.append(result.data)
    assert answers == [
        {"item": {"label": "l1"}},
        {"item": {"id": "2", "label": "l2"}},
        {"item": {"label": "l0"}},
        {"item": {"id": "1"}},
    ]
    assert plans.runs.value() == 4


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("mutation { touch }", "mutation"),
        ("{ named { name } }", "abstract_type"),
        ("{ __schema { queryType { name } } }", "introspection"),
    ],
)
async def test_fallbacks_are_counted_by_reason(query: str, reason: str) -> None:
    """What plans do not cover runs on graphql-core, with the same result, counted by reason."""
    _, plans = await both(query)
    assert plans.fallbacks.value(reason) == 1
    assert plans.runs.value() == 0


def test_condition_variables_are_those_of_skip_and_include() -> None:
    """Variables read by @skip/@include, in fragments too, key the plans; other variables and literal
    conditions do not."""
    document = parse(
        "query($a: Boolean!, $b: Boolean!, $c: ID!) { item(id: $c) { id @skip(if: $b) ...F } }"
        " fragment F on Item { label @include(if: $a) name @skip(if: true) }"
    )
    assert condition_variables(document) == ("a", "b")


def test_field_kinds() -> None:
    """Attributes are read directly; resolvers, guarded attributes and __typename keep their ways."""
    compiled, _, _ = schemas()
    executor = Executor.build(
        graphql_core_schema(compiled), parse("{ items { __typename id broken secret } }")
    )
    assert isinstance(executor, Executor)
    plan = compile_plan(executor.schema, executor.fragments, executor.operation, executor.variable_values)
    root = plan.fields[0]
    assert root.kind == RESOLVER
    shape = root.shape
    while shape.kind != OBJECT:  # [Item!]! -> Item
        assert shape.inner is not None
        shape = shape.inner
    inner = shape.fields
    assert [(field.name, field.kind, field.simple) for field in inner] == [
        ("__typename", TYPENAME, False),
        ("id", ATTRIBUTE, True),
        ("broken", RESOLVER, False),
        ("secret", RESOLVER, False),
    ]


def test_the_setting_chooses_the_engine() -> None:
    """``BFF_COMPILED_EXECUTION=false`` leaves graphql-core's executor and no plans; on by default."""
    off = build_schema(chinook_app, chinook_settings({"BFF_COMPILED_EXECUTION": "false"}))
    on = build_schema(chinook_app, chinook_settings())
    assert (off.plans, off.execution_context_class) == (None, PerEventExecutor)
    assert on.plans is not None
    assert on.execution_context_class is not PerEventExecutor
    assert issubclass(on.execution_context_class, PerEventExecutor)
