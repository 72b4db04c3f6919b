"""The Chinook app: the music store graph over its four REST services and a payments service.

Installed as ``bff_chinook.schema``; ``app`` is what ``bff serve`` serves by default
(``--app bff_chinook.schema:app``). One Strawberry module per domain, merged into one ``Query``.
"""

from __future__ import annotations

from strawberry.tools import merge_types

from bff import App, Service
from bff_chinook.demo.server import chinook_demo
from bff_chinook.resolvers.payments import PAYMENTS_WEBHOOK
from bff_chinook.schema import catalog, customers, playlists, sales
from bff_chinook.schema.mutations import Mutation
from bff_chinook.schema.subscriptions import Subscription

__all__ = ["Query", "app"]

Query = merge_types("Query", (customers.Query, catalog.Query, sales.Query, playlists.Query))

app = App(
    name="chinook",
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    services={
        "customers": Service(default_url="http://127.0.0.1:8001", description="customers, employees"),
        "catalog": Service(
            default_url="http://127.0.0.1:8002", description="artists, albums, tracks, genres, mediaTypes"
        ),
        "sales": Service(default_url="http://127.0.0.1:8003", description="invoices, invoiceLines"),
        "playlists": Service(default_url="http://127.0.0.1:8004", description="playlists, playlistTracks"),
        "payments": Service(default_url="http://127.0.0.1:8005", description="charges (demo only)"),
    },
    webhooks=[PAYMENTS_WEBHOOK],
    demo=chinook_demo,
)
"""The Chinook app (DESIGN.md's service table)."""
