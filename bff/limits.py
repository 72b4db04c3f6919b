"""Operation limits: tokens, depth, cost, aliases, root fields and introspection.

Each limit fails with its own ``extensions.code`` and a message naming the limit and the value found:

=====================  ==========================  ==================================================
limit                  code                        checked
=====================  ==========================  ==================================================
``BFF_MAX_TOKENS``     ``TOO_MANY_TOKENS``         while parsing (the parser stops at the limit)
``BFF_MAX_DEPTH``      ``QUERY_TOO_DEEP``          validation, per operation, fragments expanded
``BFF_MAX_COST``       ``QUERY_TOO_COMPLEX``       validation, per operation (:mod:`bff.cost_map`)
``BFF_MAX_ALIASES``    ``TOO_MANY_ALIASES``        validation, whole document
``BFF_MAX_ROOT_FIELDS`` ``TOO_MANY_ROOT_FIELDS``   validation, per operation
``BFF_INTROSPECTION``  ``INTROSPECTION_DISABLED``  validation: ``__schema`` and ``__type``
=====================  ==========================  ==================================================

The validation rules are classes built once per app by :func:`validation_rules` and passed to the
schema through Strawberry's ``AddValidationRules``: the rule tuple is then the same object for every
request, so Strawberry's ``ValidationCache`` (keyed by schema, document and rules) keeps hitting.
Nothing here depends on variables, so a cached validation result is right for every request.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SchemaMetaFieldDef,
    SelectionSetNode,
    StringValueNode,
    TypeMetaFieldDef,
    ValidationRule,
    VariableNode,
    get_named_type,
    is_leaf_type,
    parse,
)
from graphql.language import Node
from strawberry.extensions import SchemaExtension

from bff.cost_map import CostMap, field_cost
from bff.operation.caches import AST_BYTES_PER_SOURCE_BYTE, TextCache
from bff.settings import Settings

__all__ = [
    "INTROSPECTION_DISABLED",
    "QUERY_TOO_COMPLEX",
    "QUERY_TOO_DEEP",
    "TOO_MANY_ALIASES",
    "TOO_MANY_ROOT_FIELDS",
    "TOO_MANY_TOKENS",
    "Limits",
    "OperationMeasure",
    "measure_operation",
    "parser_extension",
    "validation_rules",
]

TOO_MANY_TOKENS = "TOO_MANY_TOKENS"
BAD_USER_INPUT = "BAD_USER_INPUT"
QUERY_TOO_DEEP = "QUERY_TOO_DEEP"
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
TOO_MANY_ALIASES = "TOO_MANY_ALIASES"
TOO_MANY_ROOT_FIELDS = "TOO_MANY_ROOT_FIELDS"
INTROSPECTION_DISABLED = "INTROSPECTION_DISABLED"


@dataclass(frozen=True, slots=True)
class Limits:
    """The configured limits (see :class:`~bff.settings.Settings` for each one's meaning)."""

    max_tokens: int
    max_depth: int
    max_cost: int
    default_list_size: int
    max_aliases: int
    max_root_fields: int
    introspection: bool
    max_string_bytes: int = 4_096
    cost_map: CostMap = field(default_factory=dict)
    """The app's field costs (``App.cost_map``)."""

    @classmethod
    def from_settings(cls, settings: Settings, cost_map: CostMap | None = None) -> Limits:
        """The limits ``settings`` configure, pricing fields with the app's ``cost_map``."""
        return cls(
            cost_map=cost_map or {},
            max_tokens=settings.max_tokens,
            max_depth=settings.max_depth,
            max_cost=settings.max_cost,
            default_list_size=settings.default_list_size,
            max_aliases=settings.max_aliases,
            max_root_fields=settings.max_root_fields,
            introspection=settings.introspection,
            max_string_bytes=settings.max_string_bytes,
        )


def limit_error(
    code: str, message: str, nodes: Node | list[Node] | None = None, **details: int
) -> GraphQLError:
    """A GraphQL error with ``extensions = {"code": code, **details}``."""
    return GraphQLError(message, nodes, extensions={"code": code, **details})


# Parsing ------------------------------------------------------------------------------------------


def _parse_limited(query: str, max_tokens: int) -> DocumentNode:
    try:
        return parse(query, max_tokens=max_tokens)
    except GraphQLSyntaxError as error:
        if "contains more than" not in error.message:
            raise
        raise limit_error(
            TOO_MANY_TOKENS,
            f"The document has more than {max_tokens} tokens, the limit.",
            limit=max_tokens,
        ) from None
    except RecursionError:
        raise limit_error(QUERY_TOO_DEEP, "The document nests too deeply to parse.") from None


def cached_parser(max_tokens: int, cache_bytes: int) -> Callable[[str], DocumentNode]:
    """The app's parser: documents parsed at most once per text (an LRU bounded in bytes,
    :class:`~bff.operation.caches.TextCache`); a document over ``max_tokens`` fails with
    ``TOO_MANY_TOKENS`` without being parsed to the end. Raises ``GraphQLError`` for a bad document.
    """
    cache: TextCache[DocumentNode] = TextCache(cache_bytes, weight=AST_BYTES_PER_SOURCE_BYTE)
    parse_limited = functools.partial(_parse_limited, max_tokens=max_tokens)

    def parse_document(query: str) -> DocumentNode:
        return cache.get_or_make(query, parse_limited)

    return parse_document


def parser_extension(cached: Callable[[str], DocumentNode]) -> type[SchemaExtension]:
    """A parsing extension (instead of Strawberry's ``ParserCache``) parsing with ``cached``, the app's
    parser (:func:`cached_parser`), so the operation pipeline and the schema share one parse."""

    class LimitedParserCache(SchemaExtension):
        """Parse through the app's cache with the token limit."""

        parse_document: ClassVar[Callable[[str], DocumentNode]] = cached

        def on_parse(self) -> Iterator[None]:
            context = self.execution_context
            if context.graphql_document is None and context.query:
                context.graphql_document = cached(context.query)
            yield

    return LimitedParserCache


# Measures -----------------------------------------------------------------------------------------

Fragments = dict[str, FragmentDefinitionNode]


@dataclass(frozen=True, slots=True)
class OperationMeasure:
    """What the limits look at in one operation."""

    depth: int
    cost: int
    root_fields: int


_META_FIELDS = {"__schema": SchemaMetaFieldDef, "__type": TypeMetaFieldDef}
"""Introspection entry points, which are not in the root type's ``fields``; they cost like others."""


def _is_list(type_: GraphQLOutputType) -> bool:
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


class _Measurer:
    """Depth and cost of selection sets; fragments are measured once each (no blow-up, no cycles)."""

    def __init__(
        self, schema: GraphQLSchema, fragments: Fragments, default_list_size: int, cost_map: CostMap
    ) -> None:
        self.schema = schema
        self.cost_map = cost_map
        self.fragments = fragments
        self.default_list_size = default_list_size
        self._depths: dict[str, int] = {}
        self._costs: dict[str, int] = {}
        self._roots: dict[str, int] = {}
        self._busy: set[str] = set()

    def _fragment(
        self, name: str, memo: dict[str, int], measure: Callable[[FragmentDefinitionNode], int]
    ) -> int:
        if name in memo:
            return memo[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in self._busy:  # unknown or cyclic: other rules report it
            return 0
        self._busy.add(name)
        try:
            memo[name] = measure(fragment)
        finally:
            self._busy.discard(name)
        return memo[name]

    def depth(self, selection_set: SelectionSetNode | None) -> int:
        """Deepest chain of fields below ``selection_set``."""
        if selection_set is None:
            return 0
        deepest = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                found = 1 + self.depth(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                found = self.depth(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                found = self._fragment(
                    selection.name.value, self._depths, lambda fragment: self.depth(fragment.selection_set)
                )
            else:  # pragma: no cover - graphql-core has no other selection kinds
                found = 0
            deepest = max(deepest, found)
        return deepest

    def root_fields(self, selection_set: SelectionSetNode) -> int:
        """Fields at the top of ``selection_set``, fragments expanded."""
        count = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                count += 1
            elif isinstance(selection, InlineFragmentNode):
                count += self.root_fields(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                count += self._fragment(
                    selection.name.value,
                    self._roots,
                    lambda fragment: self.root_fields(fragment.selection_set),
                )
        return count

    def cost(self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType | None) -> int:
        """Cost of resolving ``selection_set`` once on ``parent`` (see :mod:`bff.cost_map`)."""
        if selection_set is None or parent is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self._field_cost(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                total += self.cost(selection.selection_set, target)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment(
                    selection.name.value,
                    self._costs,
                    lambda fragment: self.cost(
                        fragment.selection_set, self.schema.get_type(fragment.type_condition.name.value)
                    ),
                )
        return total

    def _field_cost(self, node: FieldNode, parent: GraphQLNamedType) -> int:
        name = node.name.value
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        definition = _META_FIELDS.get(name) or parent.fields.get(name)
        if definition is None:
            return 0
        named = get_named_type(definition.type)
        spec = field_cost(parent.name, name, definition, self.cost_map)
        weight = spec.weight if spec is not None else (0 if is_leaf_type(named) else 1)
        size = 1
        if _is_list(definition.type) or (spec is not None and spec.multipliers):
            size = self._size(node, spec)
        return weight + size * self.cost(node.selection_set, named)

    def _size(self, node: FieldNode, spec: Any) -> int:
        if spec is None:
            return self.default_list_size
        for argument in node.arguments or ():
            if argument.name.value in spec.multipliers:
                value = argument.value
                if isinstance(value, IntValueNode):
                    return max(0, int(value.value))
                if isinstance(value, VariableNode):
                    return int(spec.max_size or spec.size or self.default_list_size)
        return int(spec.size if spec.size is not None else self.default_list_size)


def _root_type(schema: GraphQLSchema, operation: OperationDefinitionNode) -> GraphQLObjectType | None:
    return schema.get_root_type(operation.operation)


def measure_operation(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    *,
    default_list_size: int,
    cost_map: CostMap | None = None,
) -> OperationMeasure:
    """Depth, cost and root fields of ``operation`` in ``document``, fields priced by ``cost_map``."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    measurer = _Measurer(schema, fragments, default_list_size, cost_map or {})
    return OperationMeasure(
        depth=measurer.depth(operation.selection_set),
        cost=measurer.cost(operation.selection_set, _root_type(schema, operation)),
        root_fields=measurer.root_fields(operation.selection_set),
    )


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    *,
    default_list_size: int,
    cost_map: CostMap | None = None,
) -> int:
    """Cost of the operation a request runs (the named one, or the only one); 1 when unknown."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)]
    if len(chosen) != 1:
        return 1
    measure = measure_operation(
        schema, document, chosen[0], default_list_size=default_list_size, cost_map=cost_map
    )
    return max(1, measure.cost)


# Validation rules ---------------------------------------------------------------------------------


def _operation_label(node: OperationDefinitionNode) -> str:
    return f"Operation '{node.name.value}'" if node.name else "The operation"


def validation_rules(limits: Limits) -> list[type[ASTValidationRule]]:
    """The limit rules, as classes configured once; pass the list to ``AddValidationRules``."""

    class OperationLimitsRule(ValidationRule):
        """Depth, cost and root fields of each operation."""

        def enter_document(self, node: DocumentNode, *_args: Any) -> None:
            schema = self.context.schema
            for definition in node.definitions:
                if not isinstance(definition, OperationDefinitionNode):
                    continue
                measure = measure_operation(
                    schema,
                    node,
                    definition,
                    default_list_size=limits.default_list_size,
                    cost_map=limits.cost_map,
                )
                label = _operation_label(definition)
                if measure.depth > limits.max_depth:
                    self.report_error(
                        limit_error(
                            QUERY_TOO_DEEP,
                            f"{label} has depth {measure.depth}; the limit is {limits.max_depth}.",
                            definition,
                            depth=measure.depth,
                            limit=limits.max_depth,
                        )
                    )
                if measure.cost > limits.max_cost:
                    self.report_error(
                        limit_error(
                            QUERY_TOO_COMPLEX,
                            f"{label} costs {measure.cost}; the limit is {limits.max_cost}.",
                            definition,
                            cost=measure.cost,
                            limit=limits.max_cost,
                        )
                    )
                if measure.root_fields > limits.max_root_fields:
                    self.report_error(
                        limit_error(
                            TOO_MANY_ROOT_FIELDS,
                            f"{label} has {measure.root_fields} root fields; the limit is "
                            f"{limits.max_root_fields}.",
                            definition,
                            rootFields=measure.root_fields,
                            limit=limits.max_root_fields,
                        )
                    )

    class AliasLimitRule(ValidationRule):
        """Aliased fields in the whole document."""

        def __init__(self, context: Any) -> None:
            super().__init__(context)
            self.aliases = 0

        def enter_field(self, node: FieldNode, *_args: Any) -> None:
            if node.alias is not None:
                self.aliases += 1

        def leave_document(self, node: DocumentNode, *_args: Any) -> None:
            if self.aliases > limits.max_aliases:
                self.report_error(
                    limit_error(
                        TOO_MANY_ALIASES,
                        f"The document has {self.aliases} aliases; the limit is {limits.max_aliases}.",
                        aliases=self.aliases,
                        limit=limits.max_aliases,
                    )
                )

    class NoIntrospectionRule(ValidationRule):
        """``__schema`` and ``__type`` are refused (``__typename`` stays)."""

        def enter_field(self, node: FieldNode, *_args: Any) -> None:
            if node.name.value in ("__schema", "__type"):
                self.report_error(
                    limit_error(
                        INTROSPECTION_DISABLED,
                        f"Introspection is disabled; the document asks for '{node.name.value}'.",
                        node,
                    )
                )

    class StringLengthRule(ValidationRule):
        """String literals longer than ``BFF_MAX_STRING_BYTES`` (``BAD_USER_INPUT``)."""

        def enter_string_value(self, node: StringValueNode, *_args: Any) -> None:
            size = len(node.value.encode("utf-8", "surrogatepass"))
            if size > limits.max_string_bytes:
                self.report_error(
                    limit_error(
                        BAD_USER_INPUT,
                        f"A string argument has {size} bytes; the limit is {limits.max_string_bytes}.",
                        node,
                        limit=limits.max_string_bytes,
                    )
                )

    rules: list[type[ASTValidationRule]] = [OperationLimitsRule, AliasLimitRule, StringLengthRule]
    if not limits.introspection:
        rules.append(NoIntrospectionRule)
    return rules
