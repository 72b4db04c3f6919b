"""The executable schema of an app: its types, with the kit's caches, limits, masking and executor."""

from __future__ import annotations

from typing import Final

from strawberry.extensions import AddValidationRules, ValidationCache

from bff.application import App
from bff.compat import graphql_core_schema
from bff.graph.relations import resolve_directly
from bff.limits import Limits, parser_extension, validation_rules
from bff.masking import CollapseBatchErrors, MaskUnexpectedErrors
from bff.observability import QuietSchema
from bff.settings import Settings
from bff.stale import StaleExtension
from bff.subscriptions import PerEventExecutor

__all__ = ["PARSER_CACHE_SIZE", "VALIDATION_CACHE_SIZE", "build_schema"]

PARSER_CACHE_SIZE: Final = 1_000
"""Documents whose parse is kept (an LRU per app)."""
VALIDATION_CACHE_SIZE: Final = 1_000
"""Documents whose validation result is kept (an LRU per app)."""


def build_schema(app: App, settings: Settings) -> QuietSchema:
    """The executable schema of ``app``: parser and validation caches, operation limits priced by the
    app's declarations, error masking, stale reporting, and fresh contexts per subscription event.

    The limit rules are built here, once: the same rule classes for every operation keep the
    validation cache hitting (see :mod:`bff.limits`). Relationship fields are resolved by graphql-core
    directly, without Strawberry's per-call wrapper (see :mod:`bff.graph.relations`).
    """
    limits = Limits.from_settings(settings, app.cost_map)
    rules = validation_rules(limits)
    schema = QuietSchema(
        query=app.query,
        mutation=app.mutation,
        subscription=app.subscription,
        types=list(app.types),
        # Fresh contexts (DataLoaders) per subscription event and per WebSocket operation.
        execution_context_class=PerEventExecutor,
        extensions=[
            parser_extension(limits.max_tokens, PARSER_CACHE_SIZE),
            lambda: AddValidationRules(rules),
            lambda: ValidationCache(maxsize=VALIDATION_CACHE_SIZE),
            MaskUnexpectedErrors,
            CollapseBatchErrors,
            StaleExtension,
        ],
    )
    resolve_directly(graphql_core_schema(schema))
    return schema
