"""A second example app: a GraphQL BFF over one JSONPlaceholder-shaped REST service.

Serve it from the repository root with ``bff serve --app examples.jsonplaceholder:app``, pointing
``BFF_SERVICE_JSONPLACEHOLDER_URL`` at a json-server 0.17 running over ``data/db.json``; or run
both with ``bff demo --app examples.jsonplaceholder:app`` (:mod:`.demo`). Written against the public
kit API only (``bff``), as an app outside this repository would be.
"""

from __future__ import annotations

from bff import App, Service
from examples.jsonplaceholder.demo import json_server_demo
from examples.jsonplaceholder.query import Query

__all__ = ["app"]

app = App(
    name="jsonplaceholder",
    query=Query,
    services={
        "jsonplaceholder": Service(default_url="http://127.0.0.1:3000", description="posts, users, comments")
    },
    demo=json_server_demo,
)
"""The app ``bff serve --app examples.jsonplaceholder:app`` serves."""
