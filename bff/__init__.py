"""bff: a GraphQL backend-for-frontend over several downstream REST services.

The public API an app is written against: declare services and resources, write Strawberry types
with relationship fields, and hand one :class:`App` to ``bff serve --app MODULE:ATTR``.
"""

from bff.application import App, Service
from bff.context import Context
from bff.cost_map import FieldCost, cost_hint
from bff.errors import BadUserInput, BFFError, Forbidden, Unauthenticated
from bff.events import Event
from bff.graph import (
    PAGE_COST,
    Connection,
    Info,
    Page,
    Resource,
    all_nodes,
    connection,
    entity,
    node,
    nodes,
    prefetch,
    ref,
    to_many,
    to_one,
)
from bff.loaders import Record

__all__ = [
    "PAGE_COST",
    "App",
    "BFFError",
    "BadUserInput",
    "Connection",
    "Context",
    "Event",
    "FieldCost",
    "Forbidden",
    "Info",
    "Page",
    "Record",
    "Resource",
    "Service",
    "Unauthenticated",
    "all_nodes",
    "connection",
    "cost_hint",
    "entity",
    "node",
    "nodes",
    "prefetch",
    "ref",
    "to_many",
    "to_one",
]
