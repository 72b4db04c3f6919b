"""Apollo Federation 2: any app's graph as one subgraph among others (``BFF_FEDERATION=true``).

An app marks the types other subgraphs may reference or extend as entities, with the resource their
records come from::

    @bff.entity(resources.tracks)
    @strawberry.type
    class Track:
        id: strawberry.ID
        ...
        @classmethod
        def from_record(cls, record: Record) -> Track: ...

Without ``BFF_FEDERATION`` the mark does nothing: the schema and its SDL are the plain ones. With
it, the schema is Strawberry's federation schema (Federation 2: ``_service { sdl }`` with ``@link``
to the federation spec, ``@key(fields: "id")`` on every entity, ``_entities``), and each
representation ``{"__typename": "Track", "id": "3"}`` is loaded through the operation's
DataLoaders (:meth:`bff.Resource.get`): N representations of a type are one downstream request per
chunk, as N ``to_one`` fields would be, and a record that breaks its declaration fails its entity
with ``DOWNSTREAM_CONTRACT``.

The ``@key`` directives exist only in the federated schema: they are put on the entity types while
Strawberry builds it (and its SDL is printed), then taken off again, so a plain schema built in the
same process never sees them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import strawberry
from strawberry.federation.schema import FederationAny
from strawberry.federation.schema import Schema as FederationSchema
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet
from strawberry.printer import print_schema
from strawberry.types.base import StrawberryContainer, get_object_definition
from strawberry.types.unset import UNSET

from bff.compat import graphql_core_schema
from bff.context import Context
from bff.graph.resource import Resource
from bff.loaders import Record
from bff.operation.schema import OperationSchema

__all__ = ["ENTITY_ATTRIBUTE", "Entity", "FederatedSchema", "entities_of", "entity"]

ENTITY_ATTRIBUTE: Final = "__bff_entity__"
"""Where :func:`entity` keeps a type's :class:`Entity`."""

T = TypeVar("T", bound=type)


@dataclass(frozen=True, slots=True)
class Entity:
    """How a federated entity is loaded: by ``key`` (the GraphQL field, ``id``) from ``resource``,
    each record turned into the type with ``build``."""

    resource: Resource
    build: Callable[[Record], Any]
    key: str = "id"


def entity(
    resource: Resource, *, build: Callable[[Record], Any] | None = None, key: str = "id"
) -> Callable[[T], T]:
    """Mark a Strawberry type as a federation entity keyed by ``key``, loaded from ``resource``.

    ``build`` turns a record into the type (default: the type's ``from_record``). Put it above
    ``@strawberry.type``. Raises ``TypeError`` when the type has no ``build`` and no ``from_record``.
    """

    def mark(cls: T) -> T:
        made = build if build is not None else getattr(cls, "from_record", None)
        if made is None:
            raise TypeError(f"{cls.__name__}: pass build= or give the type a from_record classmethod")
        setattr(cls, ENTITY_ATTRIBUTE, Entity(resource, made, key))
        return cls

    return mark


def entities_of(roots: Sequence[type | None]) -> dict[str, tuple[type, Entity]]:
    """The entity types reachable from ``roots`` (root and extra types), by GraphQL type name."""
    found: dict[str, tuple[type, Entity]] = {}
    stack: list[Any] = [root for root in roots if root is not None]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        while isinstance(current, StrawberryContainer):
            current = current.of_type
        definition = get_object_definition(current, strict=False)
        if definition is None or id(definition) in seen:
            continue
        seen.add(id(definition))
        marked = getattr(current, ENTITY_ATTRIBUTE, None)
        if isinstance(marked, Entity) and definition.is_object_type:
            found[definition.name] = (current, marked)
        stack.extend(field.type for field in definition.fields)
    return found


@contextlib.contextmanager
def _keys_on(entities: Mapping[str, tuple[type, Entity]]) -> Iterator[None]:
    """The entity types carry ``@key`` inside the block, and only there."""
    kept: list[tuple[Any, Any]] = []
    try:
        for cls, marked in entities.values():
            definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
            kept.append((definition, definition.directives))
            key = Key(fields=FieldSet(marked.key), resolvable=UNSET)
            definition.directives = [*(definition.directives or ()), key]
        yield
    finally:
        for definition, directives in kept:
            definition.directives = directives


class FederatedSchema(OperationSchema, FederationSchema):
    """The operation schema as a Federation 2 subgraph over the app's :func:`entity` types.

    ``_service { sdl }`` and :meth:`as_str` answer the SDL printed while the keys were on;
    ``_entities`` loads representations through the operation's loaders.
    """

    def __init__(self, *, entities: Mapping[str, tuple[type, Entity]], **kwargs: Any) -> None:
        self._entity_map = dict(entities)
        with _keys_on(self._entity_map):
            super().__init__(**kwargs)
            self._sdl = print_schema(self)
        service = graphql_core_schema(self).type_map.get("_Service")
        if service is not None:
            sdl = self._sdl
            service.fields["sdl"].resolve = lambda *_args, **_kwargs: sdl  # type: ignore[attr-defined]

    def as_str(self) -> str:
        """The subgraph's SDL, ``@link`` and ``@key`` directives included."""
        return self._sdl

    def entities_resolver(
        self, info: strawberry.Info[Context, None], representations: list[FederationAny]
    ) -> list[FederationAny]:
        """One awaitable per representation; every load is asked for before any is awaited, so the
        representations of a type share one batch."""
        results: list[Any] = []
        for representation in representations:
            fields = dict(representation)  # type: ignore[call-overload]
            type_name = str(fields.pop("__typename", ""))
            found = self._entity_map.get(type_name)
            if found is None:
                results.append(TypeError(f"{type_name!r} is not an entity of this subgraph"))
                continue
            marked = found[1]
            value = fields.get(marked.key)
            if value is None:
                results.append(TypeError(f"a {type_name} representation without {marked.key!r}"))
                continue
            results.append(_load(info.context, marked, str(value)))
        return results


async def _load(context: Context, marked: Entity, key: str) -> Any:
    record = await marked.resource.get(context, key)
    if record is None:
        return None
    context.budget.spend(1)
    return context.loaders.derive(record, marked.build)
