"""Building Apollo's ``persisted-query-manifest.json`` from a frontend's documents.

``bff persisted-queries build DOCUMENTS...`` reads ``.graphql``/``.gql`` files (directories are
searched), and writes one manifest entry per named operation::

    {"format": "apollo-persisted-query-manifest", "version": 1,
     "operations": [{"id": "<sha256 of body>", "name": "TrackPage", "type": "query", "body": "..."}]}

``body`` is the operation with every fragment it spreads (from any of the files), printed as
graphql-js prints it, which is what Apollo Client sends; ``id`` is its SHA-256, what APQ clients
send as ``sha256Hash``. The manifest is what ``BFF_PERSISTED_QUERIES_MANIFEST`` reads (safelist
mode). Every operation must validate against the app's schema *and* the app's limits
(``BFF_MAX_DEPTH``, ``BFF_MAX_COST``, ...) as configured where the command runs: a document the
server would refuse is refused here, and nothing is written. Deprecated fields an operation uses
are warned about.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    Visitor,
    print_ast,
    specified_rules,
    validate,
    visit,
)

from bff.limits import Limits, cached_parser, validation_rules
from bff.operation.deprecations import deprecated_uses

__all__ = ["DOCUMENT_SUFFIXES", "MANIFEST_FORMAT", "BuiltManifest", "build_manifest", "find_documents"]

MANIFEST_FORMAT: Final = "apollo-persisted-query-manifest"
DOCUMENT_SUFFIXES: Final = (".graphql", ".gql")


@dataclass
class BuiltManifest:
    """The manifest (``None`` when any document was refused), why documents were refused, and
    warnings that refuse nothing (deprecated fields in use)."""

    manifest: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def find_documents(paths: Iterable[Path]) -> list[Path]:
    """The document files ``paths`` name: files as given, directories searched for ``*.graphql``
    and ``*.gql``, in a stable order. Raises ``FileNotFoundError`` for a path that does not exist."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in DOCUMENT_SUFFIXES and p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or directory: {path}")
    return found


class _Spreads(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_args: object) -> None:
        self.names.add(node.name.value)


def _spreads(node: OperationDefinitionNode | FragmentDefinitionNode) -> set[str]:
    spreads = _Spreads()
    visit(node, spreads)
    return spreads.names


def _where(path: str, error: GraphQLError) -> str:
    at = error.locations[0] if error.locations else None
    return f"{path}:{at.line}:{at.column}" if at is not None else path


def build_manifest(
    schema: GraphQLSchema, sources: Sequence[tuple[str, str]], *, limits: Limits
) -> BuiltManifest:
    """The manifest of the named operations in ``sources`` (``(path, text)`` pairs), each validated
    against ``schema`` with the GraphQL rules and ``limits``' rules (see the module docstring)."""
    built = BuiltManifest(manifest=None)
    parse = cached_parser(limits.max_tokens, 64_000_000)
    operations: dict[str, tuple[str, OperationDefinitionNode]] = {}
    fragments: dict[str, tuple[str, FragmentDefinitionNode]] = {}
    for path, text in sources:
        try:
            document = parse(text)
        except GraphQLError as error:
            built.problems.append(f"{_where(path, error)}: {error.message}")
            continue
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                if definition.name is None:
                    line = (
                        definition.loc.source.get_location(definition.loc.start).line if definition.loc else 0
                    )
                    built.problems.append(f"{path}:{line}: an operation without a name cannot be persisted")
                    continue
                name = definition.name.value
                if name in operations:
                    built.problems.append(f"{path}: operation {name} is defined in {operations[name][0]} too")
                    continue
                operations[name] = (path, definition)
            elif isinstance(definition, FragmentDefinitionNode):
                name = definition.name.value
                if name in fragments:
                    built.problems.append(f"{path}: fragment {name} is defined in {fragments[name][0]} too")
                    continue
                fragments[name] = (path, definition)
            else:
                built.problems.append(f"{path}: only operations and fragments belong in a document")
    rules = [*specified_rules, *validation_rules(limits)]
    entries: list[dict[str, str]] = []
    for name, (path, operation) in sorted(operations.items()):
        used: list[FragmentDefinitionNode] = []
        pending = sorted(_spreads(operation))
        seen: set[str] = set()
        while pending:
            fragment_name = pending.pop(0)
            if fragment_name in seen or fragment_name not in fragments:
                continue  # an unknown fragment is validation's to report
            seen.add(fragment_name)
            fragment = fragments[fragment_name][1]
            used.append(fragment)
            pending.extend(sorted(_spreads(fragment) - seen))
        document = DocumentNode(definitions=(operation, *used))
        errors = validate(schema, document, rules)
        if errors:
            built.problems.extend(f"{_where(path, error)}: {name}: {error.message}" for error in errors)
            continue
        for coordinate, reason in deprecated_uses(schema, document, name):
            built.warnings.append(f"{path}: {name} uses deprecated {coordinate}: {reason}")
        body = print_ast(document)
        entries.append(
            {
                "id": hashlib.sha256(body.encode("utf-8")).hexdigest(),
                "name": name,
                "type": operation.operation.value,
                "body": body,
            }
        )
    if not operations and not built.problems:
        built.problems.append("no operations found")
    if not built.problems:
        built.manifest = {"format": MANIFEST_FORMAT, "version": 1, "operations": entries}
    return built
