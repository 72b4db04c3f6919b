"""The GraphQL schema: one Strawberry module per domain, merged into one ``Query``.

:func:`build_schema` is called once per app; its extensions are factories so each operation gets
fresh extension instances while the parser and validation caches stay shared.
"""

from __future__ import annotations

from strawberry.extensions import AddValidationRules, ValidationCache
from strawberry.tools import merge_types

from bff.limits import Limits, parser_extension, validation_rules
from bff.masking import MaskUnexpectedErrors
from bff.observability import QuietSchema
from bff.settings import Settings
from bff.stale import StaleExtension
from bff.subscriptions import PerEventExecutor
from schema import catalog, customers, playlists, relations, sales
from schema.mutations import Mutation
from schema.subscriptions import Subscription

PARSER_CACHE_SIZE = 1_000
VALIDATION_CACHE_SIZE = 1_000

Query = merge_types("Query", (customers.Query, catalog.Query, sales.Query, playlists.Query))


def build_schema(settings: Settings) -> QuietSchema:
    """The executable schema with parser and validation caches, operation limits and error masking.

    The limit rules are built here, once: the same rule classes for every operation keep the
    validation cache hitting (see :mod:`bff.limits`). To-one relationship fields are resolved by
    graphql-core directly, without Strawberry's per-call wrapper (see :mod:`schema.relations`).
    """
    limits = Limits.from_settings(settings)
    rules = validation_rules(limits)
    schema = QuietSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        # Fresh contexts (DataLoaders) per subscription event and per WebSocket operation.
        execution_context_class=PerEventExecutor,
        extensions=[
            parser_extension(limits.max_tokens, PARSER_CACHE_SIZE),
            lambda: AddValidationRules(rules),
            lambda: ValidationCache(maxsize=VALIDATION_CACHE_SIZE),
            MaskUnexpectedErrors,
            StaleExtension,
        ],
    )
    # ``_schema`` is the graphql-core schema Strawberry built (its own extensions reach it so too).
    relations.resolve_directly(schema._schema)
    return schema
