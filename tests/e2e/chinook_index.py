"""The shipped Chinook data indexed for computing what the graph must answer."""

from __future__ import annotations

from collections import defaultdict
from functools import cached_property
from typing import Any

from bff_chinook.demo.chinook import load_chinook

Record = dict[str, Any]


class Chinook:
    """Records by resource and id, and children grouped by foreign key."""

    def __init__(self) -> None:
        self.data = load_chinook()

    @cached_property
    def by_id(self) -> dict[str, dict[int, Record]]:
        return {resource: {r["id"]: r for r in rows} for resource, rows in self.data.items()}

    def children(self, resource: str, field: str, key: int) -> list[Record]:
        return self._groups(resource, field).get(key, [])

    def _groups(self, resource: str, field: str) -> dict[int, list[Record]]:
        cache: dict[tuple[str, str], dict[int, list[Record]]] = self.__dict__.setdefault("_group_cache", {})
        if (resource, field) not in cache:
            groups: dict[int, list[Record]] = defaultdict(list)
            for row in self.data[resource]:
                groups[row[field]].append(row)
            cache[(resource, field)] = dict(groups)
        return cache[(resource, field)]
