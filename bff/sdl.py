"""The schema as a reviewed artifact: what changed between a base SDL and an app's schema.

``bff schema check BASE.graphql`` compares the app's schema with ``BASE`` (the SDL checked in at the
merge base, in CI) using graphql-core's ``find_breaking_changes`` and ``find_dangerous_changes``:

- *breaking* changes (a field, argument, enum value or type removed, a type changed, an argument
  made required, ...) break clients generated from the base SDL: the check fails (exit 1);
- *dangerous* changes (an enum value or an optional argument added, a default changed) are listed;
- a field, argument or enum value (or a type only they reached) removed after it was
  ``@deprecated`` in the base is the end of the agreed path, not a break: listed, accepted.

So an element leaves the schema in two reviewed steps: deprecate it (with a reason; a dangerous
change at most), then, once :mod:`bff.operation.deprecations` shows nobody uses it, remove it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from graphql import (
    BreakingChange,
    BreakingChangeType,
    DangerousChange,
    DocumentNode,
    EnumValueDefinitionNode,
    FieldDefinitionNode,
    GraphQLSchema,
    InputValueDefinitionNode,
    Visitor,
    build_ast_schema,
    find_breaking_changes,
    find_dangerous_changes,
    parse,
    visit,
)
from graphql.language.visitor import REMOVE

__all__ = ["REMOVALS", "SchemaChanges", "compare_schemas", "sdl_schema"]

REMOVALS: Final = frozenset(
    {
        BreakingChangeType.FIELD_REMOVED,
        BreakingChangeType.ARG_REMOVED,
        BreakingChangeType.VALUE_REMOVED_FROM_ENUM,
        BreakingChangeType.TYPE_REMOVED,
    }
)
"""Breaking changes that are accepted when the element was deprecated in the base."""


@dataclass(frozen=True, slots=True)
class SchemaChanges:
    """What changed from a base SDL to the new schema, as graphql-core names the changes."""

    breaking: list[BreakingChange] = field(default_factory=list)
    dangerous: list[DangerousChange] = field(default_factory=list)
    removed_after_deprecation: list[BreakingChange] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per change: ``breaking|dangerous|deprecated, removed: TYPE: description``."""
        out = [f"breaking: {c.type.name}: {c.description}" for c in self.breaking]
        out += [f"dangerous: {c.type.name}: {c.description}" for c in self.dangerous]
        out += [
            f"deprecated, removed: {c.type.name}: {c.description}" for c in self.removed_after_deprecation
        ]
        return out


def sdl_schema(sdl: str | DocumentNode) -> GraphQLSchema:
    """A schema from SDL, for comparison only: directives it does not define are allowed (a
    federation subgraph's ``@key``), so SDL printed by any bff app builds. Raises ``GraphQLError``
    for SDL that does not parse."""
    document = parse(sdl) if isinstance(sdl, str) else sdl
    return build_ast_schema(document, assume_valid_sdl=True)


class _StripDeprecated(Visitor):
    """Removes every element marked ``@deprecated`` from an SDL document."""

    @staticmethod
    def _deprecated(node: Any) -> bool:
        return any(directive.name.value == "deprecated" for directive in node.directives or ())

    def enter_field_definition(self, node: FieldDefinitionNode, *_args: object) -> object:
        return REMOVE if self._deprecated(node) else None

    def enter_input_value_definition(self, node: InputValueDefinitionNode, *_args: object) -> object:
        return REMOVE if self._deprecated(node) else None

    def enter_enum_value_definition(self, node: EnumValueDefinitionNode, *_args: object) -> object:
        return REMOVE if self._deprecated(node) else None


def _without_deprecated(base: str) -> GraphQLSchema:
    """The base schema as if its deprecated elements, and the types only they reached, were gone."""
    stripped = sdl_schema(visit(parse(base), _StripDeprecated()))
    # A schema built from its roots alone holds only the types they reach.
    return GraphQLSchema(
        query=stripped.query_type,
        mutation=stripped.mutation_type,
        subscription=stripped.subscription_type,
        directives=stripped.directives,
        assume_valid=True,
    )


def _key(change: BreakingChange) -> tuple[str, str]:
    return change.type.name, change.description


def compare_schemas(base: str, new: str) -> SchemaChanges:
    """The changes from the ``base`` SDL to the ``new`` SDL. Raises ``GraphQLError`` for SDL that
    does not parse."""
    base_schema, new_schema = sdl_schema(base), sdl_schema(new)
    breaking = find_breaking_changes(base_schema, new_schema)
    still = {_key(change) for change in find_breaking_changes(_without_deprecated(base), new_schema)}
    accepted = [c for c in breaking if c.type in REMOVALS and _key(c) not in still]
    return SchemaChanges(
        breaking=[c for c in breaking if c not in accepted],
        dangerous=find_dangerous_changes(base_schema, new_schema),
        removed_after_deprecation=accepted,
    )
