"""The JSONPlaceholder resources: one declaration each, all in the ``jsonplaceholder`` service.

Loaders, relationship fields and caching follow from these (:class:`bff.Resource`). ``list_size``
is how many records a whole list holds, which prices a field listing it for ``BFF_MAX_COST``.
"""

from __future__ import annotations

from bff import Resource

posts = Resource("jsonplaceholder", "posts", list_size=100)
users = Resource("jsonplaceholder", "users", list_size=10)
comments = Resource("jsonplaceholder", "comments", list_size=500)
