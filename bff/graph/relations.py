"""Relationship fields that resolve without awaiting when their records are at hand.

A field such as ``InvoiceLine.track`` (:func:`to_one`) or ``Invoice.lines`` (:func:`to_many`) loads
a :class:`~bff.graph.resource.Resource` through the operation's DataLoaders by a key of its source::

    @strawberry.type
    class Post:
        id: strawberry.ID
        user_id: strawberry.Private[str | None]
        user: User | None = to_one(users, key=lambda post: post.user_id, build=User.from_record)
        comments: list[Comment] = to_many(comments, by="postId", key=lambda post: post.id,
                                          build=lambda record: Comment.from_record(record), size=5)

 Its resolver is a plain function: when
the loader's future for the key is already done (a batch loaded it, or a list page primed it) it
returns the node(s) at once; otherwise it returns an awaitable, which graphql-core awaits as it would
an ``async`` resolver. A resolved value skips the coroutine, the task and the event-loop round trips
of an awaited one, which is most of what a field of a wide query costs.

:func:`prefetch` is what makes the records be at hand: a list resolver passes its items, and for the
relationship fields the query selects on them (and on their nodes, level by level) it loads every
item's records and waits for the batch before returning the list. It asks the loaders for the same
keys at the same moment the per-item resolvers would have, so the batches, and the downstream
requests, stay the same; only the waiting moves up to the list. A failed key keeps its error in its
future: the item's field raises it when resolved, so the response gets the same null and the same
error. Fields with permission classes are never loaded ahead.
"""

from __future__ import annotations

import contextlib
import functools
from asyncio import Future
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Generic, Protocol, TypeVar

import strawberry
from graphql import GraphQLObjectType, GraphQLSchema
from graphql.pyutils import Path
from strawberry.permission import BasePermission
from strawberry.types.base import has_object_definition
from strawberry.types.nodes import SelectedField, Selection, convert_selections
from strawberry.utils.str_converters import to_camel_case

from bff.compat import strawberry_field_of
from bff.context import Context
from bff.cost_map import COST_METADATA_KEY, FieldCost
from bff.graph.nodes import Info
from bff.graph.resource import Resource
from bff.loaders import Record

__all__ = ["FieldInfo", "Relation", "all_nodes", "prefetch", "resolve_directly", "to_many", "to_one"]

SourceT = TypeVar("SourceT")
NodeT = TypeVar("NodeT")
ItemT = TypeVar("ItemT")

_METADATA_KEY: Final = "bff.relation"
"""Where a field made by :func:`to_one` or :func:`to_many` keeps its :class:`Relation` (in
``StrawberryField.metadata``)."""

_MEMO_KEY: Final = "bff.prefetch"
"""Key prefix of the selections :func:`prefetch` keeps per operation (:meth:`Loaders.memo`)."""


class FieldInfo(Protocol):
    """What a relationship resolver reads of its info: Strawberry's ``Info`` or graphql-core's."""

    @property
    def context(self) -> Context: ...

    @property
    def path(self) -> Path: ...


class Relation(Generic[SourceT, NodeT]):
    """How a relationship field gets its node (to-one) or nodes (to-many) from the operation's loaders.

    ``key`` gives the loader key of a source (``None``: a null to-one field); ``load`` the
    operation's loader future for a key: of a record or ``None`` (to-one), or of a list of records
    (``many``); ``build`` the node of a record.
    """

    __slots__ = ("build", "key", "load", "many")

    def __init__(
        self,
        key: Callable[[SourceT], str | None],
        load: Callable[[Context, str], Future[Any]],
        build: Callable[[Record], NodeT],
        *,
        many: bool = False,
    ) -> None:
        self.key = key
        self.load = load
        self.build = build
        self.many = many

    def resolve(self, source: SourceT, info: FieldInfo) -> Any:
        """The node(s) when the loader has the key's result already, else an awaitable of them.

        A key whose batch failed raises the batch's error here, as awaiting it would. When the
        operation's CPU slice is used up (:class:`bff.operation.budget.Budget`), an awaitable that
        yields to the event loop first, even for a loaded record.
        """
        key = self.key(source)
        context = info.context
        if key is None or context.budget.exhausted:
            return [] if self.many else None
        future = self.load(context, key)
        if future.done() and not context.budget.must_yield():
            return self._value(info, future.result())
        return self._later(info, future)

    async def _later(self, info: FieldInfo, future: Future[Any]) -> Any:
        if future.done():
            await info.context.budget.pause()
        value = self._value(info, await future)
        if self.many:
            # Loaded the slow way (no list above prefetched it): prefetch for the items instead.
            await prefetch(info, value)
        return value

    def _value(self, info: FieldInfo, loaded: Any) -> Any:
        """The node(s) of the loaded record(s), one node per record and operation.

        Notes the field's path once if a record is stale, as :func:`bff.graph.node` and
        :func:`~bff.graph.nodes` do.
        """
        context = info.context
        derive = context.loaders.derive
        if self.many:
            context.budget.spend(len(loaded))
            if context.stale.active:
                context.stale.note_any(info.path.as_list(), loaded)
            build = self.build
            return [derive(record, build) for record in loaded]
        if loaded is None:
            return None
        context.budget.spend(1)
        if context.stale.active:
            # The path is a list built per call: only when there is something stale to note.
            context.stale.note(info.path.as_list(), loaded)
        return derive(loaded, self.build)

    def start(
        self, context: Context, sources: Sequence[SourceT], weights: Sequence[int]
    ) -> dict[str, tuple[Future[Any], int]]:
        """Ask the loader for each source's key (once per key): key -> (its future, how many times the
        response will resolve it: the summed ``weights`` of the sources with that key)."""
        started: dict[str, tuple[Future[Any], int]] = {}
        key_of = self.key
        for source, weight in zip(sources, weights, strict=True):
            key = key_of(source)
            if key is None:
                continue
            found = started.get(key)
            started[key] = (
                self.load(context, key) if found is None else found[0],
                weight + (found or (0, 0))[1],
            )
        return started

    def nodes(
        self, context: Context, started: Mapping[str, tuple[Future[Any], int]]
    ) -> tuple[list[NodeT], list[int], int]:
        """The nodes of the futures that succeeded (those of the failed ones are their fields' errors),
        each with how many times the response will hold it, and the items that makes in all."""
        derive, build = context.loaders.derive, self.build
        weight_of: dict[int, int] = {}
        nodes: list[NodeT] = []
        items = 0
        for future, weight in started.values():
            if future.cancelled() or future.exception() is not None:
                continue
            value = future.result()
            records = value if self.many else ([] if value is None else [value])
            items += weight * len(records)
            for record in records:
                node = derive(record, build)
                if id(node) not in weight_of:
                    nodes.append(node)
                    weight_of[id(node)] = 0
                weight_of[id(node)] += weight
        return nodes, [weight_of[id(node)] for node in nodes], items


def to_one(
    resource: Resource,
    *,
    key: Callable[[Any], str | None],
    build: Callable[[Record], Any],
    description: str | None = None,
) -> Any:
    """A to-one field: ``user: User | None = to_one(users, key=lambda post: post.user_id, build=...)``.

    ``key`` gives the id of the ``resource`` record a source points at (``None``: the field is null);
    ``build`` turns the record into the field's type. The GraphQL type is the attribute's annotation.
    """
    relation = Relation(key, resource.get, build)
    return _field(relation, description=description, permission_classes=(), cost=None)


def to_many(
    resource: Resource,
    *,
    by: str,
    key: Callable[[Any], str],
    build: Callable[[Record], Any],
    description: str | None = None,
    size: int | None = None,
    permission_classes: Sequence[type[BasePermission]] = (),
) -> Any:
    """A to-many field: the ``resource`` records whose field ``by`` equals ``key(source)``.

    ``comments: list[Comment] = to_many(comments, by="postId", key=lambda post: post.id, build=...)``.
    ``size`` is how many records a source is expected to have, what the field costs per item below it
    (:mod:`bff.cost_map`); ``None`` counts ``BFF_DEFAULT_LIST_SIZE``. With ``permission_classes``
    Strawberry checks them before every resolution, and :func:`prefetch` never loads the field ahead
    (that would load what the principal may not see).
    """

    def load(context: Context, value: str) -> Future[list[Record]]:
        return resource.where(context, by, value)

    relation = Relation(key, load, build, many=True)
    cost = FieldCost(size=size) if size is not None else None
    return _field(relation, description=description, permission_classes=permission_classes, cost=cost)


def _field(
    relation: Relation[Any, Any],
    *,
    description: str | None,
    permission_classes: Sequence[type[BasePermission]],
    cost: FieldCost | None,
) -> Any:
    def resolve(root: Any, info: Info) -> Any:
        return relation.resolve(root, info)

    metadata: dict[str, Any] = {_METADATA_KEY: relation}
    if cost is not None:
        metadata[COST_METADATA_KEY] = cost
    return strawberry.field(
        resolver=resolve,
        description=description,
        permission_classes=list(permission_classes),
        metadata=metadata,
    )


def resolve_directly(schema: GraphQLSchema) -> int:
    """Let graphql-core call each relationship's :meth:`Relation.resolve` itself; how many fields.

    Strawberry wraps every resolver: per call it builds an ``Info``, converts arguments and runs the
    field-extension chain, about as much work as the resolution of a loaded record. A relationship
    field has no arguments, and :meth:`Relation.resolve` needs only ``context``, ``path`` (and for a
    list resolved the slow way ``field_nodes``), which graphql-core's own resolve info has too.
    Fields with extensions (permission classes) keep Strawberry's wrapper, which runs them.
    """
    count = 0
    for graphql_type in schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType):
            continue
        for graphql_field in graphql_type.fields.values():
            field = strawberry_field_of(graphql_field)
            if field is None or _METADATA_KEY not in field.metadata:
                continue
            if field.extensions:
                continue
            graphql_field.resolve = field.metadata[_METADATA_KEY].resolve
            count += 1
    return count


@functools.cache
def _relations(cls: Any) -> Mapping[str, Relation[Any, Any]]:
    """The relationship fields of a Strawberry type that may be prefetched, by GraphQL name.

    Empty for other types. Fields with permission classes are left out: loading them ahead would
    load what the principal may not see.
    """
    if not has_object_definition(cls):
        return {}
    return {
        field.graphql_name or to_camel_case(field.python_name): field.metadata[_METADATA_KEY]
        for field in cls.__strawberry_definition__.fields
        if _METADATA_KEY in field.metadata and not field.extensions
    }


def _included(directives: Mapping[str, Mapping[str, Any]]) -> bool:
    """False when ``@skip(if: true)`` or ``@include(if: false)`` leaves a selection out."""
    skip = directives.get("skip")
    if skip is not None and skip.get("if") is True:
        return False
    include = directives.get("include")
    return include is None or include.get("if") is not False


def _fields(selections: Sequence[Selection], type_name: str | None = None) -> list[SelectedField]:
    """The fields selected, fragments spread in, those skipped by directives left out.

    With ``type_name``, fragments on another type are left out too (an interface's name counts as
    another: a missed prefetch only costs time, a wrong one a request the query did not need).
    """
    out: list[SelectedField] = []
    for selection in selections:
        if not _included(selection.directives):
            continue
        if isinstance(selection, SelectedField):
            out.append(selection)
        elif type_name is None or selection.type_condition in (None, type_name):
            out.extend(_fields(selection.selections, type_name))
    return out


def _place(path: Path | None) -> tuple[tuple[str, str | None], ...]:
    """The field's place in the query: its response path without list indices, with parent types."""
    keys: list[tuple[str, str | None]] = []
    while path is not None:
        if isinstance(path.key, str):
            keys.append((path.key, path.typename))
        path = path.prev
    return tuple(reversed(keys))


def _below(selections: Sequence[Selection], under: Sequence[str]) -> list[Selection]:
    """The selections of ``selections``' fields, then of their fields named ``under`` in turn."""
    below = [sub for field in _fields(selections) for sub in field.selections]
    for name in under:
        below = [sub for field in _fields(below) if field.name == name for sub in field.selections]
    return below


async def _settle(futures: Sequence[Future[Any]]) -> None:
    """Wait until every future is done; a failed one keeps its error for its field to raise."""
    for future in futures:
        if not future.done():
            # One by one: a future that is done costs nothing, and waking once per batch is what
            # awaiting each field would cost. The error is the field's to raise, with its path.
            with contextlib.suppress(Exception):
                await future


def _selected(info: Any) -> list[Selection]:
    """The selection of the field ``info`` is of (Strawberry's ``Info`` or graphql-core's)."""
    if isinstance(info, strawberry.Info):
        selected: list[Selection] = info.selected_fields
        return selected
    return convert_selections(info, info.field_nodes)


async def prefetch(info: FieldInfo, items: list[ItemT], *, under: Sequence[str] = ()) -> list[ItemT]:
    """``items`` once the records of the relationship fields selected on them are loaded.

    ``info`` is the list field's; ``under`` names the fields between it and the items (``("edges",
    "node")`` for a connection). Level by level, as the resolvers would: the records of the items'
    selected relationship fields (:func:`to_one`, :func:`to_many` without permission classes), then
    those of the fields selected on those nodes, and so on. Does not raise for a failed load: the
    field of that item does when resolved.

    Level by level it also counts the items the response will hold below ``items`` (a node reached
    twice counts twice, as graphql-core completes it twice): once they pass what the operation's
    budget has left, it raises ``OPERATION_BUDGET_EXCEEDED`` at once, for this list field, instead of
    letting graphql-core complete them one by one (:mod:`bff.operation.budget`).
    """
    if not items:
        return items
    context = info.context
    # Every item of every list at this place in the query has the same selection: read it once.
    here = (_MEMO_KEY, _place(info.path), *under)
    below = context.loaders.memo(here, lambda: _below(_selected(info), under))
    level: list[tuple[Sequence[Any], Sequence[int], Sequence[Selection]]] = [(items, [1] * len(items), below)]
    projected = len(items)
    while level:
        started: list[tuple[Relation[Any, Any], dict[str, tuple[Future[Any], int]], Sequence[Selection]]] = []
        for sources, weights, selections in level:
            cls = sources[0].__class__
            relations = _relations(cls)
            if not relations:
                continue
            for field in _fields(selections, cls.__strawberry_definition__.name):
                relation = relations.get(field.name)
                if relation is not None:
                    started.append((relation, relation.start(context, sources, weights), field.selections))
        for _, loads, _ in started:
            await _settle([future for future, _ in loads.values()])
        level = []
        for relation, loads, selections in started:
            nodes, weights, count = relation.nodes(context, loads)
            projected += count
            if nodes and selections:
                level.append((nodes, weights, selections))
        context.budget.check_projected(projected)
    return items


async def all_nodes(
    info: Info,
    resource: Resource,
    build: Callable[[Record], NodeT],
    *,
    params: Sequence[tuple[str, str]] = (),
) -> list[NodeT]:
    """Every record of ``resource`` (``GET /{path}`` with ``params``) as ``build(record)`` nodes, with the
    relationship fields the query selects on them loaded first (:func:`prefetch`): a root list field.

    An answer the entity cache hands out again gets the nodes built for it before, shared between
    operations (:class:`~bff.graph.nodes.SharedNodes`): ``build`` must make a value of the record
    alone, and the nodes keep no per-operation state. Raises ``DOWNSTREAM_*`` when the service fails,
    ``OPERATION_BUDGET_EXCEEDED`` past the budget.
    """
    records = await resource.all(info.context, params)
    return await prefetch(info, resource.shared_nodes.nodes(info, build, records))
