"""The few dependency internals bff needs that have no public form, each in one place.

Every function here names the internal it reads; ``tests/bff/test_compat.py`` fails loudly when an
upgrade of the dependency moves or changes it, so it is fixed here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import GraphQLSchema
from strawberry.schema.base import BaseSchema

__all__ = ["graphql_core_schema", "is_stream_request"]


def graphql_core_schema(schema: BaseSchema) -> GraphQLSchema:
    """The graphql-core schema a Strawberry schema executes with (``Schema._schema``).

    Strawberry offers no public accessor; the kit needs it to resolve relationship fields without
    Strawberry's per-call wrapper and to measure operations before executing them.
    """
    found = getattr(schema, "_schema", None)
    if not isinstance(found, GraphQLSchema):
        raise RuntimeError("strawberry.Schema._schema is gone or changed: update bff.compat")
    return found


def is_stream_request(view: Any, headers: Mapping[str, str]) -> bool:
    """Whether Strawberry's view would answer these headers with a stream (SSE or multipart).

    Strawberry decides with ``AsyncBaseHTTPView._get_stream_transport_from_headers``; asking the same
    function keeps bff's routing and Strawberry's in step.
    """
    decide = getattr(view, "_get_stream_transport_from_headers", None)
    if decide is None:
        raise RuntimeError("strawberry's _get_stream_transport_from_headers is gone: update bff.compat")
    return decide(headers) is not None
