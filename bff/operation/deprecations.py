"""Deprecated schema elements still in use: counted per element, logged once per operation name.

A field leaves the schema in two steps (README, "Schema lifecycle"): first it is marked
``@deprecated(reason: ...)`` (``strawberry.field(deprecation_reason=...)``), which ``bff schema check``
accepts; once nobody uses it, it may be removed. This stage tells who still does. For every operation
the pipeline admits, the deprecated elements it selects (fields, arguments, input fields and enum
values, fragments followed) are counted in :attr:`DeprecationTracker.uses`, one count per element
per operation, labelled with the element's schema coordinate (``Track.oldName``,
``Query.tracks(genre:)``, ``Genre.OLD``); the first operation of each name (and element) is logged
at WARNING::

    operation 'TrackPage' uses deprecated Track.oldName: Use name.

What an operation uses depends on its text alone, so the finding is cached per text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from cachetools import LRUCache
from graphql import (
    ArgumentNode,
    DocumentNode,
    EnumValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    ObjectFieldNode,
    OperationDefinitionNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    is_input_object_type,
    visit,
)
from graphql.language import ExecutableDefinitionNode

from bff.counters import Counter
from bff.operation.caches import TextCache

__all__ = ["DEPRECATION_CACHE_BYTES", "DeprecationTracker", "deprecated_uses"]

logger = logging.getLogger("bff.deprecations")

DEPRECATION_CACHE_BYTES = 4_000_000
"""Texts whose deprecated uses are kept (estimated bytes)."""
LOGGED_NAMES = 10_000
"""Most (operation name, element) pairs remembered as logged; older ones may be logged again."""

Use = tuple[str, str]
"""``(schema coordinate, deprecation reason)`` of one deprecated element."""


class _Finder(Visitor):
    """Collects the deprecated elements one definition uses, and the fragments it spreads."""

    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.uses: dict[str, str] = {}
        self.spreads: set[str] = set()
        self._fields: list[str] = []

    def leave_field(self, node: FieldNode, *_args: object) -> None:
        self._fields.pop()

    def enter_field(self, node: FieldNode, *_args: object) -> None:
        self._fields.append(node.name.value)
        field = self.type_info.get_field_def()
        parent = self.type_info.get_parent_type()
        if field is not None and parent is not None and field.deprecation_reason is not None:
            self.uses[f"{parent.name}.{node.name.value}"] = field.deprecation_reason

    def enter_argument(self, node: ArgumentNode, *_args: object) -> None:
        argument = self.type_info.get_argument()
        if argument is None or argument.deprecation_reason is None:
            return
        directive = self.type_info.get_directive()
        if directive is not None:
            self.uses[f"@{directive.name}({node.name.value}:)"] = argument.deprecation_reason
            return
        parent = self.type_info.get_parent_type()
        if parent is not None and self._fields:
            coordinate = f"{parent.name}.{self._fields[-1]}({node.name.value}:)"
            self.uses[coordinate] = argument.deprecation_reason

    def enter_object_field(self, node: ObjectFieldNode, *_args: object) -> None:
        parent = get_named_type(self.type_info.get_parent_input_type())
        if is_input_object_type(parent):
            field = parent.fields.get(node.name.value)
            if field is not None and field.deprecation_reason is not None:
                self.uses[f"{parent.name}.{node.name.value}"] = field.deprecation_reason

    def enter_enum_value(self, node: EnumValueNode, *_args: object) -> None:
        value = self.type_info.get_enum_value()
        enum = get_named_type(self.type_info.get_input_type())
        if value is not None and enum is not None and value.deprecation_reason is not None:
            self.uses[f"{enum.name}.{node.value}"] = value.deprecation_reason

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_args: object) -> None:
        self.spreads.add(node.name.value)


def deprecated_uses(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None = None
) -> tuple[Use, ...]:
    """The deprecated elements the operation named ``operation_name`` (or the only one) of
    ``document`` uses, with the fragments it spreads, sorted by coordinate; ``()`` when the
    operation is not found. Unknown fields and types are left to validation."""
    operation: OperationDefinitionNode | None = None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    for definition in operations:
        if operation_name is None or (definition.name and definition.name.value == operation_name):
            operation = definition
            break
    if operation is None or (operation_name is None and len(operations) > 1):
        return ()
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}

    def scan(definition: ExecutableDefinitionNode) -> _Finder:
        type_info = TypeInfo(schema)
        finder = _Finder(type_info)
        visit(definition, TypeInfoVisitor(type_info, finder))
        return finder

    uses: dict[str, str] = {}
    pending: list[ExecutableDefinitionNode] = [operation]
    seen: set[str] = set()
    while pending:
        finder = scan(pending.pop())
        uses.update(finder.uses)
        for name in sorted(finder.spreads - seen):
            seen.add(name)
            if name in fragments:
                pending.append(fragments[name])
    return tuple(sorted(uses.items()))


def _only_name(document: DocumentNode) -> str | None:
    """The name of the document's only operation (what a request without ``operationName`` runs)."""
    names = [d.name for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    return names[0].value if len(names) == 1 and names[0] is not None else None


class DeprecationTracker:
    """Counts and logs the deprecated elements operations use; one per app (the pipeline's).

    :attr:`uses` is the counter (``bff_deprecated_field_uses_total``, label ``coordinate``) a metrics
    exporter observes (:meth:`bff.counters.Counter.observe`).
    """

    def __init__(
        self, *, cache_bytes: int = DEPRECATION_CACHE_BYTES, logged_names: int = LOGGED_NAMES
    ) -> None:
        self.uses = Counter(
            "bff_deprecated_field_uses_total",
            "Operations that used a deprecated field, argument, input field or enum value.",
            ("coordinate",),
        )
        self._found: TextCache[tuple[Use, ...]] = TextCache(cache_bytes)
        self._logged: LRUCache[tuple[str, str], bool] = LRUCache(maxsize=logged_names)

    def record(
        self,
        schema: GraphQLSchema,
        query: str,
        document: DocumentNode,
        operation_name: str | None,
        *,
        request_id: str = "-",
    ) -> tuple[Use, ...]:
        """Count the deprecated elements this operation uses and log those new for its name."""
        key = f"{operation_name or ''}\n{query}"
        uses = self._found.get_or_make(key, lambda _key: deprecated_uses(schema, document, operation_name))
        if uses:
            self._count(uses, operation_name or _only_name(document), request_id)
        return uses

    def _count(self, uses: Iterable[Use], operation_name: str | None, request_id: str) -> None:
        name = operation_name or "(anonymous)"
        for coordinate, reason in uses:
            self.uses.inc(coordinate)
            if (name, coordinate) not in self._logged:
                self._logged[(name, coordinate)] = True
                logger.warning(
                    "operation %r uses deprecated %s: %s",
                    name,
                    coordinate,
                    reason,
                    extra={"request_id": request_id},
                )

    def observe(self, observer: Callable[[tuple[str, ...], int], None]) -> None:
        """Attach a metrics exporter to :attr:`uses`."""
        self.uses.observe(observer)
