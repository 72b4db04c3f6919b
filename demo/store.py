"""The records of one demo service, changed in place by its writes and indexed by id.

Records keep their stored order (json-server lists them in the order of its ``db.json``). Ids are
matched as json-server matches them, by ``String(id)``: ``/tracks/1`` finds ``{"id": 1}`` and
``/tracks/01`` finds nothing. Lookups by id, one or a batch, cost O(1) per id.
"""

from __future__ import annotations

import itertools
import math
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bff_chinook.demo.chinook import Record
from bff_chinook.demo.jsvalues import compare, js_copy, js_string, plural, sortable

__all__ = ["DuplicateIdError", "ResourceStore"]


class DuplicateIdError(ValueError):
    """A record with that id exists already (json-server answers 500 ``Insert failed, duplicate id``)."""


class ResourceStore:
    """The mutable records of one service: resource name -> records in stored order, indexed by id.

    Raises:
        ValueError: a resource name contains ``/``, or two records of a resource share an id.
    """

    def __init__(self, resources: Mapping[str, Sequence[Record]]) -> None:
        self.collections: dict[str, list[Record]] = {}
        self._by_lower: dict[str, str] = {}
        # String(id) -> (insertion number, record); the number restores stored order for batches.
        self._index: dict[str, dict[str, tuple[int, Record]]] = {}
        self._numbers = itertools.count()
        for name, records in resources.items():
            if "/" in name:
                raise ValueError(f"resource names cannot contain '/': {name!r}")
            self.collections[name] = []
            self._index[name] = {}
            self._by_lower.setdefault(name.lower(), name)
            for record in records:
                self.insert(name, js_copy(record))

    def resolve(self, name: str) -> str | None:
        """Return the resource a path segment names (case-insensitively, like Express), or None."""
        return name if name in self.collections else self._by_lower.get(name.lower())

    def get(self, name: str, record_id: Any) -> Record | None:
        """Return the record of resource ``name`` whose ``String(id)`` equals ``String(record_id)``."""
        entry = self._index[name].get(js_string(record_id))
        return None if entry is None else entry[1]

    def select(self, name: str, keys: Iterable[str]) -> list[Record]:
        """Return the records whose ``String(id)`` is one of ``keys``, in stored order, each once."""
        found = {entry[0]: entry[1] for key in keys if (entry := self._index[name].get(key))}
        return [found[number] for number in sorted(found) if found[number]["id"] is not None]

    def new_id(self, name: str) -> Any:
        """Return json-server's next id: the largest id + 1, 1 when empty, a random string for string ids."""
        best: Any = None
        for record in self.collections[name]:
            current = record.get("id")
            if current is not None and (
                best is None or compare(sortable(True, current), sortable(True, best)) > 0
            ):
                best = current
        if best is None:
            return 1
        if isinstance(best, int | float) and not isinstance(best, bool) and math.isfinite(best):
            return best + 1
        return secrets.token_urlsafe(6)[:7]

    def insert(self, name: str, record: Record) -> None:
        """Append a record (kept as given, not copied); one without an ``id`` is stored but not indexed.

        Raises:
            DuplicateIdError: a record with that id exists.
        """
        if "id" in record:
            key = js_string(record["id"])
            if key in self._index[name]:
                raise DuplicateIdError(f"Error: Insert failed, duplicate id {key!r} in {name}")
            self._index[name][key] = (next(self._numbers), record)
        self.collections[name].append(record)

    def remove(self, name: str, record_id: Any) -> Record | None:
        """Remove and return the record with that id, or None."""
        entry = self._index[name].pop(js_string(record_id), None)
        if entry is None:
            return None
        records = self.collections[name]
        del records[next(i for i, other in enumerate(records) if other is entry[1])]
        return entry[1]

    def remove_dangling(self) -> None:
        """Remove every record with a ``<thing>Id`` naming a missing record of an existing ``<things>``.

        json-server does this after each DELETE, in one pass over every resource. A null foreign key is
        left alone, where json-server crashes.
        """
        dangling: list[tuple[str, Any]] = []
        for name, records in self.collections.items():
            for record in records:
                for key, value in record.items():
                    if not key.endswith("Id") or value is None or "id" not in record:
                        continue
                    target = plural(key[:-2])
                    if target in self._index and self.get(target, value) is None:
                        dangling.append((name, record["id"]))
        for name, record_id in dangling:
            self.remove(name, record_id)
