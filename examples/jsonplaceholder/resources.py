"""The JSONPlaceholder resources: one declaration each, all in the ``jsonplaceholder`` service.

Loaders, relationship fields and caching follow from these (:class:`bff.Resource`). ``list_size``
is how many records a whole list holds, which prices a field listing it for ``BFF_MAX_COST``;
``fields`` are what the types read, with JSON types: a record that breaks them is a
``DOWNSTREAM_CONTRACT`` error, never a silent null.
"""

from __future__ import annotations

from bff import Resource

posts = Resource(
    "jsonplaceholder", "posts", list_size=100, fields={"id": int, "userId": int, "title": str, "body": str}
)
users = Resource(
    "jsonplaceholder", "users", list_size=10, fields={"id": int, "name": str, "username": str, "email": str}
)
comments = Resource(
    "jsonplaceholder",
    "comments",
    list_size=500,
    fields={"id": int, "postId": int, "name": str, "email": str, "body": str},
)
