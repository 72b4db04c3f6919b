"""Execution plans: what a query operation resolves and how, worked out once per cached document.

graphql-core decides everything per field and per value: it looks the field up, builds a resolve
info, checks for middleware, then walks the return type (non-null? list? leaf? object?) and collects
the sub-selection of every object it completes. For a cached document none of that changes between
runs; a :class:`Plan` holds it: per response key the field, how its value is got, and the shape its
value is completed by (:class:`Shape`). :mod:`bff.operation.compiled` runs plans.

Fields are collected by graphql-core's own ``collect_fields`` / ``collect_subfields``, with the
variable values of the run that compiles the plan: aliases, fragments and inline fragments merge
as graphql-core merges them, and ``@skip``/``@include`` are decided then. A plan is therefore kept per
document, operation and values of the variables the document's ``@skip``/``@include`` read.

What a plan does not cover raises :class:`Unsupported` with a reason (a label of
``bff_compiled_fallbacks_total``); the operation then runs on graphql-core as before:

- ``mutation``, ``subscription``: only queries are compiled (mutations run their root fields one
  after the other; subscriptions stream);
- ``abstract_type``: a field of an interface or union type;
- ``directive``: a field carrying a directive other than ``@skip``/``@include``;
- ``fragment_variables``: fragments with variable definitions (graphql-core's experimental fragment
  arguments);
- ``introspection``: ``__schema`` and ``__type`` (rare, and not worth a second implementation);
- ``deferred``: incremental delivery (``@defer``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLField,
    GraphQLID,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    is_abstract_type,
    is_leaf_type,
    visit,
)
from graphql.execution.values import VariableValues
from graphql.language import DirectiveNode, Visitor

from bff.compat import (
    FieldDetailsList,
    FragmentDetails,
    GroupedFieldSet,
    collect_fields,
    collect_subfields,
    plain_attribute_of,
)

__all__ = [
    "ATTRIBUTE",
    "LEAF",
    "LIST",
    "NON_NULL",
    "OBJECT",
    "RESOLVER",
    "TYPENAME",
    "FieldPlan",
    "Plan",
    "Shape",
    "Unsupported",
    "compile_plan",
    "condition_variables",
]

TYPENAME: Final = 0
"""A ``__typename`` field: the parent type's name."""
ATTRIBUTE: Final = 1
"""A Strawberry field without resolver, extensions or permissions: an attribute of the source."""
RESOLVER: Final = 2
"""Any other field: its resolver, called as graphql-core calls it (Strawberry's wrapper included)."""

NON_NULL: Final = 0
LIST: Final = 1
LEAF: Final = 2
OBJECT: Final = 3

_CONDITIONS: Final = frozenset({"skip", "include"})


class Unsupported(Exception):
    """The operation is not compiled; ``reason`` says why (a fallback metric label)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True, eq=False)
class Shape:
    """How a value of one GraphQL output type is completed.

    ``kind`` is :data:`NON_NULL` or :data:`LIST` (``inner`` is the wrapped type's shape),
    :data:`LEAF` (``plain_string``: a ``str`` is its own output, as for ``String`` and ``ID``), or
    :data:`OBJECT` (``fields`` are the selected fields' plans). ``object_fields`` are the fields of an
    object, or of a non-null object, without ``is_type_of``: a value other than ``None`` or an
    exception is completed by them alone. ``plain_attributes`` are ``(response key, attribute)``
    when every one of those fields is a plain ``String``/``ID`` attribute: an object whose attributes
    all hold a ``str`` is completed by reading them, nothing else.
    """

    kind: int
    graphql_type: GraphQLOutputType
    inner: Shape | None = None
    plain_string: bool = False
    fields: list[FieldPlan] = field(default_factory=list)
    object_fields: list[FieldPlan] | None = None
    plain_attributes: tuple[tuple[str, str], ...] | None = None


@dataclass(slots=True, eq=False)
class FieldPlan:
    """One response key of a selection: the field, how its value is got, and its shape.

    ``resolve`` is the field's graphql-core resolver (:data:`RESOLVER`); ``attribute`` the Python
    attribute and ``default`` Strawberry's default resolver, ``None`` for plain ``getattr``
    (:data:`ATTRIBUTE`). ``simple`` marks an attribute with a leaf value: completed inline;
    ``plain_string`` when that leaf is ``String`` or ``ID`` (a ``str`` value is its own output).
    """

    name: str
    parent: GraphQLObjectType
    definition: GraphQLField
    details: FieldDetailsList
    nodes: list[FieldNode]
    kind: int
    shape: Shape
    resolve: Any = None
    attribute: str = ""
    default: Any = None
    arguments: bool = False
    simple: bool = False
    plain_string: bool = False
    null_message: str = ""
    list_message: str = ""


@dataclass(slots=True, eq=False)
class Plan:
    """An operation's root fields, on ``root_type``."""

    root_type: GraphQLObjectType
    fields: list[FieldPlan]


def condition_variables(document: DocumentNode) -> tuple[str, ...]:
    """Names of the variables ``@skip``/``@include`` read anywhere in ``document``, sorted."""
    names: set[str] = set()

    class Conditions(Visitor):
        def enter_directive(self, node: DirectiveNode, *_args: Any) -> None:
            if node.name.value in _CONDITIONS:
                values = [argument.value for argument in node.arguments or ()]
                names.update(value.name.value for value in values if isinstance(value, VariableNode))

    visit(document, Conditions())
    return tuple(sorted(names))


def compile_plan(
    schema: GraphQLSchema,
    fragments: dict[str, FragmentDetails],
    operation: OperationDefinitionNode,
    variable_values: VariableValues,
    *,
    hide_suggestions: bool = False,
) -> Plan:
    """The plan of a query ``operation`` for these values of its ``@skip``/``@include`` variables.

    Raises :class:`Unsupported` for what plans do not cover (see the module docstring).
    """
    if operation.operation is not OperationType.QUERY:
        raise Unsupported(operation.operation.value)
    if any(details.variable_signatures for details in fragments.values()):
        raise Unsupported("fragment_variables")
    root_type = schema.query_type
    assert root_type is not None  # a schema without a query type does not validate a query
    collected = collect_fields(schema, fragments, variable_values, root_type, operation, hide_suggestions)
    grouped, deferred, _ = collected
    if deferred:
        raise Unsupported("deferred")
    compiler = _Compiler(schema, fragments, operation, variable_values, hide_suggestions)
    for details in grouped.values():
        if details[0].node.name.value in ("__schema", "__type"):
            raise Unsupported("introspection")
    return Plan(root_type, compiler.fields(root_type, grouped))


class _Compiler:
    """Builds the field plans of one operation, recursively along its selections."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDetails],
        operation: OperationDefinitionNode,
        variable_values: VariableValues,
        hide_suggestions: bool,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.operation = operation
        self.variable_values = variable_values
        self.hide_suggestions = hide_suggestions

    def fields(self, parent: GraphQLObjectType, grouped: GroupedFieldSet) -> list[FieldPlan]:
        plans: list[FieldPlan] = []
        for name, details in grouped.items():
            plan = self.field(parent, name, details)
            if plan is not None:
                plans.append(plan)
        return plans

    def field(self, parent: GraphQLObjectType, name: str, details: FieldDetailsList) -> FieldPlan | None:
        nodes = [detail.node for detail in details]
        for node in nodes:
            if any(directive.name.value not in _CONDITIONS for directive in node.directives or ()):
                raise Unsupported("directive")
        field_name = nodes[0].name.value
        definition = self.schema.get_field(parent, field_name)
        if definition is None:
            return None  # graphql-core leaves out a field it cannot find (validation refuses it first)
        shape = self.shape(definition.type, details)
        plan = FieldPlan(
            name=name,
            parent=parent,
            definition=definition,
            details=details,
            nodes=nodes,
            kind=RESOLVER,
            shape=shape,
            resolve=definition.resolve,
            arguments=bool(definition.args or nodes[0].arguments),
            null_message=f"Cannot return null for non-nullable field {parent.name}.{field_name}.",
            list_message=f"Expected Iterable, but did not find one for field '{parent.name}.{field_name}'.",
        )
        if field_name == "__typename":
            plan.kind = TYPENAME
            return plan
        strawberry_field = plain_attribute_of(definition)
        if strawberry_field is not None and not plan.arguments:
            plan.kind = ATTRIBUTE
            plan.attribute = strawberry_field.python_name
            default = strawberry_field.default_resolver
            plan.default = None if default is getattr else default
            leaf = shape if shape.kind != NON_NULL else shape.inner
            plan.simple = leaf is not None and leaf.kind == LEAF
            plan.plain_string = plan.simple and leaf is not None and leaf.plain_string
        return plan

    def shape(self, graphql_type: GraphQLOutputType, details: FieldDetailsList) -> Shape:
        if isinstance(graphql_type, GraphQLNonNull):
            inner = self.shape(graphql_type.of_type, details)
            return Shape(
                NON_NULL,
                graphql_type,
                inner=inner,
                object_fields=inner.object_fields,
                plain_attributes=inner.plain_attributes,
            )
        if isinstance(graphql_type, GraphQLList):
            return Shape(LIST, graphql_type, inner=self.shape(graphql_type.of_type, details))
        if is_leaf_type(graphql_type):
            assert isinstance(graphql_type, GraphQLLeafType)
            return Shape(LEAF, graphql_type, plain_string=graphql_type in (GraphQLString, GraphQLID))
        if is_abstract_type(graphql_type):
            raise Unsupported("abstract_type")
        assert isinstance(graphql_type, GraphQLObjectType)
        grouped, deferred, _ = collect_subfields(
            self.schema,
            self.fragments,
            self.variable_values,
            self.operation,
            graphql_type,
            details,
            self.hide_suggestions,
        )
        if deferred:
            raise Unsupported("deferred")
        fields = self.fields(graphql_type, grouped)
        if graphql_type.is_type_of is not None:
            return Shape(OBJECT, graphql_type, fields=fields)
        attributes = tuple((plan.name, plan.attribute) for plan in fields)
        all_plain = all(plan.plain_string and plan.default is None for plan in fields)
        return Shape(
            OBJECT,
            graphql_type,
            fields=fields,
            object_fields=fields,
            plain_attributes=attributes if fields and all_plain else None,
        )
