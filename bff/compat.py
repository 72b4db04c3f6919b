"""The few dependency internals bff needs that have no public form, each in one place.

Every function here names the internal it reads; ``tests/bff/test_compat.py`` fails loudly when an
upgrade of the dependency moves or changes it, so it is fixed here and nowhere else.

- Strawberry: the graphql-core schema it executes with, the field behind a graphql-core field (and
  whether Strawberry resolves it as a plain attribute), and how its view tells a streamed (SSE,
  multipart) request from a plain one.
- purgatory: the state of a breaker and the exception it raises while open (both live in
  ``purgatory.domain.model``, which the package does not export), and the state a listener's
  ``state_changed`` event carries (``purgatory.domain.messages.events.ContextChanged``).
- limits: the expiry task of its in-process storage, which nothing public stops.
- graphql-core: what compiled execution (:mod:`bff.operation.compiled`) builds on: the field collection
  of ``graphql.execution.collect_fields`` (``collect_subfields`` and its types are not exported), and
  the ``Executor`` methods it calls, which 3.3 marks ``:meta private:`` (:data:`EXECUTOR_METHODS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, Protocol

from graphql import GraphQLField, GraphQLSchema
from graphql.execution.collect_fields import (
    FieldDetailsList,
    FragmentDetails,
    GroupedFieldSet,
    collect_fields,
    collect_subfields,
)
from limits.aio.storage import MemoryStorage, Storage
from purgatory.domain.model import OpenedState
from strawberry.schema.base import BaseSchema
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

__all__ = [
    "EXECUTOR_METHODS",
    "CircuitOpened",
    "CircuitState",
    "FieldDetailsList",
    "FragmentDetails",
    "GroupedFieldSet",
    "breaker_event_state",
    "circuit_state",
    "collect_fields",
    "collect_subfields",
    "graphql_core_schema",
    "is_stream_request",
    "plain_attribute_of",
    "stop_storage_expiry",
    "strawberry_field_of",
]


def graphql_core_schema(schema: BaseSchema) -> GraphQLSchema:
    """The graphql-core schema a Strawberry schema executes with (``Schema._schema``).

    Strawberry offers no public accessor; the kit needs it to resolve relationship fields without
    Strawberry's per-call wrapper and to measure operations before executing them.
    """
    found = getattr(schema, "_schema", None)
    if not isinstance(found, GraphQLSchema):
        raise RuntimeError("strawberry.Schema._schema is gone or changed: update bff.compat")
    return found


def strawberry_field_of(field: GraphQLField) -> StrawberryField | None:
    """The Strawberry field a graphql-core field was built from, or ``None`` for other fields.

    Strawberry keeps it in the field's ``extensions`` under ``GraphQLCoreConverter.DEFINITION_BACKREF``,
    a constant of its schema converter rather than a documented API.
    """
    found = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    return found if isinstance(found, StrawberryField) else None


def plain_attribute_of(field: GraphQLField) -> StrawberryField | None:
    """The Strawberry field behind ``field`` when Strawberry resolves it as a plain attribute, else
    ``None``.

    Strawberry gives a field without resolver, extensions (permission classes are one) and exception
    handlers its ``_get_basic_result`` resolver, marked ``_is_default``; every other field gets a
    wrapper that also carries ``_is_default`` when the field has no resolver of its own, so the name
    is what tells them apart. Compiled execution reads such a field with ``getattr`` itself.
    """
    found = strawberry_field_of(field)
    resolve = field.resolve
    if found is None or not found.is_basic_field or resolve is None:
        return None
    if not getattr(resolve, "_is_default", False) or resolve.__name__ != "_get_basic_result":
        return None
    return found


EXECUTOR_METHODS: Final = (
    "build_resolve_info",
    "build_response",
    "complete_leaf_value",
    "complete_value",
    "finish",
    "handle_field_error",
    "settle_in_background",
)
"""The methods of graphql-core's ``Executor`` that compiled execution calls: resolve infos, the
response, completion of what a plan leaves to graphql-core, and error location and propagation."""


def is_stream_request(view: Any, headers: Mapping[str, str]) -> bool:
    """Whether Strawberry's view would answer these headers with a stream (SSE or multipart).

    Strawberry decides with ``AsyncBaseHTTPView._get_stream_transport_from_headers``; asking the same
    function keeps bff's routing and Strawberry's in step.
    """
    decide = getattr(view, "_get_stream_transport_from_headers", None)
    if decide is None:
        raise RuntimeError("strawberry's _get_stream_transport_from_headers is gone: update bff.compat")
    return decide(headers) is not None


CircuitState = Literal["closed", "opened", "half-opened"]
"""purgatory's names of a breaker's states (``purgatory.typing.StateName``)."""

CircuitOpened: type[Exception] = OpenedState
"""What entering a purgatory breaker raises while it is open (``purgatory.domain.model.OpenedState``)."""


class _PurgatoryContext(Protocol):
    @property
    def state(self) -> CircuitState: ...

    @property
    def opened_at(self) -> float | None: ...


class _PurgatoryBreaker(Protocol):
    @property
    def context(self) -> _PurgatoryContext: ...


def circuit_state(breaker: _PurgatoryBreaker) -> tuple[CircuitState, float | None]:
    """A purgatory breaker's state and when it opened (wall-clock seconds; ``None`` if it has not).

    Reads ``AsyncCircuitBreaker.context.state`` and ``.opened_at``: documented in purgatory's API
    reference, but of a class the package does not export. An ``opened`` breaker whose time-to-live is
    over is still ``opened`` until the next call enters it (purgatory then makes it half-opened).
    """
    context = breaker.context
    return context.state, context.opened_at


def breaker_event_state(event_name: str, event: object) -> CircuitState | None:
    """The state a purgatory listener's event reports entering, or ``None`` for other events.

    purgatory calls a listener (``AsyncCircuitBreakerFactory.add_listener``, public) as
    ``hook(name, event_name, event)``; for ``"state_changed"`` the event is a ``ContextChanged`` with
    the new ``state``, a class of ``purgatory.domain.messages.events`` the package does not export.
    """
    if event_name != "state_changed":
        return None
    state = getattr(event, "state", None)
    if state not in ("closed", "opened", "half-opened"):
        raise RuntimeError(
            f"purgatory's state_changed event has no known state ({state!r}): update bff.compat"
        )
    return state  # type: ignore[no-any-return]


def stop_storage_expiry(storage: Storage) -> None:
    """Cancel the expiry task that limits' in-process storage may leave pending (``MemoryStorage.timer``).

    The memory storage starts a task after each hit to drop expired windows; nothing public stops it,
    so an app shut down right after a hit would leave it pending on a closing event loop. Other
    storages keep no task: a no-op for them.
    """
    if isinstance(storage, MemoryStorage):
        timer = storage.timer
        if timer is not None and not timer.done():
            timer.cancel()
