"""Deprecated fields still in use are counted per element and logged once per operation name."""

from __future__ import annotations

import enum
import logging
from typing import Annotated

import pytest
import strawberry
from graphql import parse

from bff import App
from bff.app import VIEW
from bff.compat import graphql_core_schema
from bff.graph.schema import build_schema
from bff.operation.deprecations import deprecated_uses
from bff.settings import load_settings
from tests.e2e.stack import run_bff


@strawberry.enum
class Kind(enum.Enum):
    AUDIO = "AUDIO"
    TAPE = strawberry.enum_value("TAPE", deprecation_reason="No more tapes.")


@strawberry.input
class Filter:
    name: str | None = None
    old_name: str | None = strawberry.field(default=None, deprecation_reason="Use name.")


@strawberry.type
class Item:
    name: str = "n"
    old_name: str = strawberry.field(default="o", deprecation_reason="Use name.")


@strawberry.type
class Query:
    @strawberry.field
    def items(
        self,
        kind: Kind | None = None,
        where: Filter | None = None,
        limit: Annotated[int | None, strawberry.argument(deprecation_reason="Use first.")] = None,
    ) -> list[Item]:
        return [Item()]


APP = App(name="deprecations", query=Query, services={})


def uses(query: str, operation_name: str | None = None) -> list[str]:
    schema = graphql_core_schema(build_schema(APP, load_settings({})))
    return [coordinate for coordinate, _ in deprecated_uses(schema, parse(query), operation_name)]


def test_fields_arguments_input_fields_and_enum_values_are_found() -> None:
    """Each kind of deprecated element is named by its schema coordinate."""
    query = '{ items(kind: TAPE, where: {oldName: "x"}, limit: 2) { name oldName } }'
    assert uses(query) == ["Filter.oldName", "Item.oldName", "Kind.TAPE", "Query.items(limit:)"]


def test_only_the_operation_run_counts_with_the_fragments_it_spreads() -> None:
    """Another operation of the document does not count; a fragment the operation spreads does."""
    query = """
        query Old { items { ...Legacy } }
        query New { items { name } }
        fragment Legacy on Item { oldName }
    """
    assert uses(query, "Old") == ["Item.oldName"]
    assert uses(query, "New") == []


async def test_uses_are_counted_each_time_and_logged_once_per_operation_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Three runs of one operation and one of another: counted four times, logged once per name."""
    async with run_bff("deprecations", {}, app_spec=APP) as stack:
        with caplog.at_level(logging.WARNING, logger="bff.deprecations"):
            for _ in range(3):
                body = await stack.post("query Page { items { oldName } }")
                assert body == {"data": {"items": [{"oldName": "o"}]}}
            await stack.post("query Other { items { oldName name } }")
            await stack.post("query Fresh { items { name } }")
        assert stack.app is not None
        tracker = stack.app[VIEW].schema.pipeline.deprecations  # type: ignore[union-attr]
        assert tracker.uses.value("Item.oldName") == 4
        assert tracker.uses.items() == [(("Item.oldName",), 4)]
    lines = [r.getMessage() for r in caplog.records if r.name == "bff.deprecations"]
    assert len(lines) == 2
    assert "operation 'Page' uses deprecated Item.oldName: Use name." in lines[0]
    assert "operation 'Other'" in lines[1]


async def test_an_exporter_sees_every_count() -> None:
    """An observer attached to the tracker (the metrics hook) sees each increment with its label."""
    seen: list[tuple[tuple[str, ...], int]] = []
    async with run_bff("deprecations", {}, app_spec=APP) as stack:
        assert stack.app is not None
        pipeline = stack.app[VIEW].schema.pipeline
        assert pipeline is not None
        pipeline.deprecations.observe(lambda labels, amount: seen.append((labels, amount)))
        await stack.post("{ items(kind: TAPE) { name } }")
    assert seen == [(("Kind.TAPE",), 1)]
