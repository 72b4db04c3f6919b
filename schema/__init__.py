"""The GraphQL schema: one Strawberry module per domain, merged into one ``Query``.

:func:`build_schema` is called once per app; its extensions are factories so each operation gets
fresh extension instances while the parser and validation caches stay shared.
"""

from __future__ import annotations

from strawberry.extensions import ParserCache, ValidationCache
from strawberry.tools import merge_types

from bff.masking import MaskUnexpectedErrors
from bff.observability import QuietSchema
from schema import catalog, customers, playlists, sales

PARSER_CACHE_SIZE = 1_000
VALIDATION_CACHE_SIZE = 1_000

Query = merge_types("Query", (customers.Query, catalog.Query, sales.Query, playlists.Query))


def build_schema() -> QuietSchema:
    """The executable schema with parser and validation caches and error masking."""
    return QuietSchema(
        query=Query,
        extensions=[
            lambda: ParserCache(maxsize=PARSER_CACHE_SIZE),
            lambda: ValidationCache(maxsize=VALIDATION_CACHE_SIZE),
            MaskUnexpectedErrors,
        ],
    )
