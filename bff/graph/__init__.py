"""What apps declare their graph with: resources, relationship fields, connections, nodes, writes.

Import from here (or from :mod:`bff`); the submodules are the kit's own layout.
"""

from bff.graph.federation import Entity, entity
from bff.graph.nodes import Info, node, nodes, ref
from bff.graph.relations import all_nodes, prefetch, to_many, to_one
from bff.graph.relay import PAGE_COST, Connection, Edge, PageInfo, connection, page_window
from bff.graph.resource import Page, Resource

__all__ = [
    "PAGE_COST",
    "Connection",
    "Edge",
    "Entity",
    "Info",
    "Page",
    "PageInfo",
    "Resource",
    "all_nodes",
    "connection",
    "entity",
    "node",
    "nodes",
    "page_window",
    "prefetch",
    "ref",
    "to_many",
    "to_one",
]
