"""Validation results cached per document text, bounded in bytes (instead of Strawberry's
``ValidationCache``, whose LRU of ``maxsize`` entries keeps each entry's syntax tree alive)."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from bff.compat import graphql_core_schema
from bff.operation.caches import TextCache

__all__ = ["validation_cache"]


def validation_cache(cache: TextCache[list[GraphQLError]]) -> type[SchemaExtension]:
    """An extension validating each document text once, keeping the errors in ``cache``.

    The validation rules are the same objects for every operation of an app (:mod:`bff.limits`),
    so the result depends on the text alone.
    """

    class BoundedValidationCache(SchemaExtension):
        """Validate through the app's bounded cache."""

        def on_validate(self) -> Iterator[None]:
            context = self.execution_context
            document = context.graphql_document
            if document is not None and context.query is not None and context.validation_rules:
                context.pre_execution_errors = cache.get_or_make(
                    context.query,
                    lambda _text: validate_document(
                        graphql_core_schema(context.schema), document, tuple(context.validation_rules)
                    ),
                )
            yield

    return BoundedValidationCache
