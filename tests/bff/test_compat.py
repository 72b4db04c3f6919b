"""bff.compat against the installed dependencies: each test fails when an upgrade moves an internal."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import strawberry
from graphql import Executor, GraphQLField, GraphQLObjectType
from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from purgatory import AsyncCircuitBreakerFactory
from strawberry.aiohttp.views import GraphQLView
from strawberry.permission import BasePermission
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)

from bff import compat


@strawberry.type
class Query:
    @strawberry.field(metadata={"marker": 7})
    def hello(self) -> str:
        return "from strawberry"


class Boom(Exception):
    """The failure the breaker tests count."""


def query_field(schema: strawberry.Schema, name: str) -> GraphQLField:
    query = compat.graphql_core_schema(schema).type_map["Query"]
    assert isinstance(query, GraphQLObjectType)
    return query.fields[name]


async def test_graphql_core_schema_is_the_one_strawberry_executes() -> None:
    """A resolver set on the graphql-core schema is the one ``Schema.execute`` runs."""
    schema = strawberry.Schema(query=Query)
    field = query_field(schema, "hello")
    assert (await schema.execute("{ hello }")).data == {"hello": "from strawberry"}

    field.resolve = lambda root, info: "from graphql-core"

    assert (await schema.execute("{ hello }")).data == {"hello": "from graphql-core"}


def test_strawberry_field_of_finds_the_field_behind_a_graphql_core_field() -> None:
    """The graphql-core field of a Strawberry field leads back to it, metadata included."""
    schema = strawberry.Schema(query=Query)

    found = compat.strawberry_field_of(query_field(schema, "hello"))

    assert found is not None
    assert found.python_name == "hello"
    assert found.metadata["marker"] == 7


def test_strawberry_field_of_is_none_for_fields_strawberry_did_not_build() -> None:
    """Introspection fields, which graphql-core owns, have no Strawberry field behind them."""
    schema = compat.graphql_core_schema(strawberry.Schema(query=Query))
    schema_type = schema.type_map["__Schema"]
    assert isinstance(schema_type, GraphQLObjectType)

    assert compat.strawberry_field_of(schema_type.fields["types"]) is None


class Nobody(BasePermission):
    message = "no"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return False


@strawberry.type
class Attributes:
    plain: str
    guarded: str = strawberry.field(permission_classes=[Nobody])

    @strawberry.field
    def resolved(self) -> str:
        return self.plain


@strawberry.type
class AttributesQuery:
    attributes: Attributes


def test_the_executor_has_the_methods_compiled_execution_calls() -> None:
    """graphql-core's Executor still has every method bff.operation.compiled calls (private in 3.3)."""
    missing = [name for name in compat.EXECUTOR_METHODS if not callable(getattr(Executor, name, None))]
    assert missing == []


def test_plain_attribute_of_tells_attributes_from_guarded_and_resolved_fields() -> None:
    """Only a field Strawberry reads as a bare attribute is one: not with a permission class (its
    wrapper is marked ``_is_default`` too), not with a resolver, not a field Strawberry did not build."""
    schema = compat.graphql_core_schema(strawberry.Schema(query=AttributesQuery))
    attributes = schema.type_map["Attributes"]
    assert isinstance(attributes, GraphQLObjectType)
    found = compat.plain_attribute_of(attributes.fields["plain"])
    assert found is not None
    assert found.python_name == "plain"
    assert compat.plain_attribute_of(attributes.fields["guarded"]) is None
    assert compat.plain_attribute_of(attributes.fields["resolved"]) is None
    schema_type = schema.type_map["__Schema"]
    assert isinstance(schema_type, GraphQLObjectType)
    assert compat.plain_attribute_of(schema_type.fields["types"]) is None


@pytest.mark.parametrize(
    ("protocols", "accept", "streamed"),
    [
        ([GRAPHQL_SSE_PROTOCOL], "text/event-stream", True),
        ([GRAPHQL_SSE_PROTOCOL], "application/json", False),
        ([GRAPHQL_SSE_PROTOCOL], "application/graphql-response+json, application/json", False),
        ([MULTIPART_SUBSCRIPTION_PROTOCOL], 'multipart/mixed;subscriptionSpec="1.0"', True),
        ([GRAPHQL_TRANSPORT_WS_PROTOCOL], "text/event-stream", False),
    ],
)
def test_is_stream_request_follows_the_views_protocols(
    protocols: list[str], accept: str, streamed: bool
) -> None:
    """A request is streamed when its Accept names a stream protocol the view enables, and only then."""
    view = GraphQLView(schema=strawberry.Schema(query=Query), subscription_protocols=protocols)

    assert compat.is_stream_request(view, {"Accept": accept}) is streamed
    assert compat.is_stream_request(view, {"accept": accept}) is streamed


async def test_circuit_state_follows_a_purgatory_breaker_and_open_raises_circuit_opened() -> None:
    """States read closed, then opened (with its time) after the threshold; an open breaker raises
    CircuitOpened; after the time-to-live a call enters half-opened and its success closes it."""
    factory = AsyncCircuitBreakerFactory(default_threshold=2, default_ttl=0.2)
    breaker = await factory.get_breaker("svc")
    assert compat.circuit_state(breaker) == ("closed", None)

    before = time.time()
    for _ in range(2):
        with pytest.raises(Boom):
            async with breaker:
                raise Boom
    state, opened_at = compat.circuit_state(await factory.get_breaker("svc"))
    assert state == "opened"
    assert opened_at is not None
    assert before <= opened_at <= time.time()

    with pytest.raises(compat.CircuitOpened):
        async with await factory.get_breaker("svc"):
            pytest.fail("an open breaker let a call through")

    await asyncio.sleep(0.25)
    breaker = await factory.get_breaker("svc")
    assert compat.circuit_state(breaker)[0] == "opened"  # until a call enters it
    async with breaker:
        assert compat.circuit_state(breaker)[0] == "half-opened"
    assert compat.circuit_state(await factory.get_breaker("svc"))[0] == "closed"


async def test_breaker_event_state_reads_purgatorys_listener_events() -> None:
    """A purgatory listener hears state_changed with opened, then half-opened and closed, which
    breaker_event_state reads; other events read None."""
    factory = AsyncCircuitBreakerFactory(default_threshold=1, default_ttl=0.05)
    heard: list[tuple[str, compat.CircuitState | None]] = []
    factory.add_listener(
        lambda name, event_name, event: heard.append(
            (event_name, compat.breaker_event_state(event_name, event))
        )
    )
    breaker = await factory.get_breaker("svc")
    with pytest.raises(Boom):
        async with breaker:
            raise Boom
    await asyncio.sleep(0.08)
    async with await factory.get_breaker("svc"):
        pass
    states = [state for name, state in heard if name == "state_changed"]
    assert states == ["opened", "half-opened", "closed"]
    assert ("circuit_breaker_created", None) in heard
    assert ("failed", None) in heard


async def test_stop_storage_expiry_cancels_the_memory_storages_task() -> None:
    """A hit on limits' memory storage leaves its expiry task in ``timer``; stopping cancels it."""
    storage = MemoryStorage()
    limiter = MovingWindowRateLimiter(storage)
    assert await limiter.hit(parse("5/second"), "key")
    timer = storage.timer
    assert isinstance(timer, asyncio.Task), "limits' MemoryStorage.timer is gone: update bff.compat"

    compat.stop_storage_expiry(storage)
    await asyncio.sleep(0)

    assert timer.done()
    assert storage.timer is timer
