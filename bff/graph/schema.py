"""The executable schema of an app: its types, with the kit's caches, limits, masking and executor."""

from __future__ import annotations

from typing import Any, Final

from graphql import GraphQLError
from strawberry.extensions import AddValidationRules

from bff.application import App
from bff.compat import graphql_core_schema
from bff.graph.federation import FederatedSchema, entities_of
from bff.graph.relations import resolve_directly
from bff.limits import Limits, cached_parser, parser_extension, validation_rules
from bff.masking import MaskUnexpectedErrors, shape_errors
from bff.operation.caches import TextCache
from bff.operation.compiled import compiled_executor
from bff.operation.direct import DirectExecution
from bff.operation.pipeline import OperationPipeline
from bff.operation.plan_cache import CompiledPlans
from bff.operation.response_cache import ResponseCache
from bff.operation.schema import OperationSchema
from bff.operation.validation import validation_cache
from bff.persisted import PersistedQueries
from bff.rate_limit import RateLimiter
from bff.settings import Settings
from bff.shared import SharedState
from bff.stale import StaleExtension
from bff.subscription_groups import SubscriptionGroups
from bff.subscriptions import PerEventExecutor

__all__ = ["PARSE_CACHE_BYTES", "PLAN_CACHE_BYTES", "VALIDATION_CACHE_BYTES", "build_schema"]

PARSE_CACHE_BYTES: Final = 64_000_000
"""Memory the parsed documents of an app may take (estimated bytes; least recently used go first)."""
VALIDATION_CACHE_BYTES: Final = 8_000_000
"""Memory the validation results of an app may take, keyed by document text (estimated bytes)."""
PLAN_CACHE_BYTES: Final = 64_000_000
"""Memory the compiled plans of an app may take (estimated bytes; least recently used go first)."""


def build_schema(app: App, settings: Settings, *, shared: SharedState | None = None) -> OperationSchema:
    """The executable schema of ``app``: the operation pipeline every transport runs through
    (:mod:`bff.operation.pipeline`), parser and validation caches bounded in bytes, operation limits
    priced by the app's declarations, error masking, stale reporting, fresh contexts per
    subscription event, and with ``BFF_COMPILED_EXECUTION`` queries run by compiled plans, without
    Strawberry's per-operation machinery once their document is parsed and validated
    (:mod:`bff.operation.direct`).

    The limit rules are built here, once: the same rule classes for every operation keep the
    validation cache hitting (see :mod:`bff.limits`). Relationship fields are resolved by graphql-core
    directly, without Strawberry's per-call wrapper (see :mod:`bff.graph.relations`). With
    ``BFF_FEDERATION`` the schema is a Federation 2 subgraph over the app's entities
    (:mod:`bff.graph.federation`). APQ documents and rate-limit counters live where ``shared``
    (:mod:`bff.shared`) keeps them; by default in the process. With ``BFF_RESPONSE_CACHE`` whole
    results of cacheable queries are kept (:mod:`bff.operation.response_cache`).
    """
    limits = Limits.from_settings(settings, app.cost_map)
    rules = validation_rules(limits)
    parse = cached_parser(limits.max_tokens, PARSE_CACHE_BYTES)
    validated: TextCache[list[GraphQLError]] = TextCache(VALIDATION_CACHE_BYTES)
    plans = CompiledPlans(PLAN_CACHE_BYTES) if settings.compiled_execution else None
    options: dict[str, Any] = {
        "query": app.query,
        "mutation": app.mutation,
        "subscription": app.subscription,
        "types": list(app.types),
        # Fresh contexts (DataLoaders) per subscription event and per WebSocket operation; queries
        # by their compiled plan (bff.operation.compiled).
        "execution_context_class": compiled_executor(plans) if plans is not None else PerEventExecutor,
        # Direct execution (bff.operation.direct) does inline what these do: keep both in step.
        "extensions": [
            parser_extension(parse),
            lambda: AddValidationRules(rules),
            validation_cache(validated),
            MaskUnexpectedErrors,
            shape_errors(suggestions=settings.field_suggestions),
            StaleExtension,
        ],
    }
    schema: OperationSchema
    if settings.federation:
        entities = entities_of([app.query, app.mutation, app.subscription, *app.types])
        schema = FederatedSchema(entities=entities, **options)
    else:
        schema = OperationSchema(**options)
    core = graphql_core_schema(schema)
    resolve_directly(core)
    schema.validated = validated
    schema.responses = ResponseCache.from_settings(settings)
    schema.groups = SubscriptionGroups(queue_size=settings.subscription_queue_size)
    schema.plans = plans
    if plans is not None:
        schema.direct = DirectExecution(
            schema,
            core=core,
            executor=schema.execution_context_class,
            validated=validated,
            suggestions=settings.field_suggestions,
        )
    schema.pipeline = OperationPipeline(
        settings,
        cost_map=app.cost_map,
        persisted=PersistedQueries.from_settings(settings, store=shared.query_store if shared else None),
        rate_limiter=RateLimiter.from_settings(
            settings,
            storage=shared.rate_limit_storage if shared else None,
            available=shared.rate_limit_available if shared else None,
        ),
        parse=parse,
    )
    schema.pipeline.bind(core)
    return schema
