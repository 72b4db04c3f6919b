"""The list query of json-server 0.17.4: what ``GET /{resource}?...`` keeps, in which order, which slice.

``run_list_query`` follows json-server's ``list()`` step by step:

1. drop ``q _start _end _sort _order _limit _embed _expand`` from the filters, then every parameter
   that no record has (except ``field_ne``, ``_lte``, ``_gte``, ``_like``, ``callback`` and ``_``);
2. ``q``: keep records where some value, at any depth, contains it case-insensitively as a string;
3. filters: ``field=v`` keeps records whose ``String(field)`` is one of the values; ``field_ne``
   excludes all of them; ``field_gte``/``field_lte`` compare like JavaScript; ``field_like`` is a
   case-insensitive regular expression; a null or missing field never matches;
4. ``_sort=a,b`` + ``_order=asc,desc``: stable, nulls after values, missing fields after nulls;
5. ``_page`` (+ ``_limit``, default 10) with a ``Link`` header, else ``_start``/``_end``, else
   ``_start``/``_limit``; ``X-Total-Count`` is the count before slicing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cmp_to_key
from typing import Any, Final

from bff_chinook.demo.chinook import Record
from bff_chinook.demo.jsvalues import (
    Sortable,
    compare,
    js_compare,
    js_string,
    parse_int,
    path_get,
    sortable,
    truthy,
)

__all__ = ["CONTROL_PARAMS", "InvalidQuery", "ListPage", "Params", "run_list_query"]

Params = dict[str, list[str]]
"""Query parameters as Express's qs parses them: name -> values, in order of first appearance."""

CONTROL_PARAMS: Final = ("q", "_start", "_end", "_sort", "_order", "_limit", "_embed", "_expand")
_OPERATOR: Final = re.compile(r"(_lte|_gte|_ne|_like)$")
_NOT_FILTERS: Final = ("callback", "_")  # JSONP's callback and jQuery's cache buster


class InvalidQuery(ValueError):
    """A query json-server cannot run (an invalid ``_like`` pattern); it answers 500."""


@dataclass(slots=True)
class ListPage:
    """The records to send and the headers that describe the slice (``X-Total-Count``, ``Link``)."""

    records: list[Record]
    headers: dict[str, str] = field(default_factory=dict)


def run_list_query(
    records: Sequence[Record],
    params: Params,
    *,
    url: str,
    select_ids: Callable[[list[str]], list[Record]] | None = None,
) -> ListPage:
    """Run json-server's list query over ``records``.

    ``params`` is changed as json-server changes ``req.query``: the control parameters and unknown
    fields are removed. ``url`` is the full request URL, which the ``Link`` header rewrites.
    ``select_ids`` returns the records whose ``String(id)`` is one of the given values, in stored
    order; with it an ``id`` filter costs O(ids) instead of a scan of every record.

    Raises:
        InvalidQuery: a ``_like`` value is not a valid regular expression.
    """
    page = params.get("_page", [""])[0]  # read before pruning drops it: no record has a _page field
    control = {key: params.pop(key)[0] for key in CONTROL_PARAMS if key in params}
    for key in list(params):
        if key in _NOT_FILTERS or _OPERATOR.search(key):
            continue
        if not any(path_get(record, key)[0] for record in records):
            del params[key]
    indexed = select_ids is not None and "id" in params
    # Filters are ANDed and keep stored order, so the id filter may run first, through the index.
    result = select_ids(params["id"]) if select_ids is not None and indexed else list(records)
    query = control.get("q", "").lower()
    if query:
        result = _search(result, query)
    for key, values in params.items():
        if key not in _NOT_FILTERS and not (indexed and key == "id"):
            result = _filter(result, key, values)
    if control.get("_sort"):
        result = _sort(result, control["_sort"], control.get("_order", ""))
    limit, start, end = control.get("_limit"), control.get("_start"), control.get("_end")
    headers: dict[str, str] = {}
    if end or limit or page:
        headers["X-Total-Count"] = str(len(result))
        headers["Access-Control-Expose-Headers"] = "X-Total-Count" + (", Link" if page else "")
    if page:
        number = parse_int(page) or 0
        number = number if number >= 1 else 1
        result, headers["Link"] = _paginate(result, number, parse_int(limit) or 10, url)
    elif end:
        # A NaN bound is 0 to lodash's slice; Python's slicing treats negative bounds as lodash does.
        result = result[parse_int(start) or 0 : parse_int(end) or 0]
    elif limit:
        offset = parse_int(start) or 0
        result = result[offset : offset + (parse_int(limit) or 0)]
    return ListPage(result, headers)


def _search(records: list[Record], query: str) -> list[Record]:
    def contains(value: Any) -> bool:
        if not truthy(value):
            return False
        if isinstance(value, list):
            return any(contains(item) for item in value)
        if isinstance(value, dict):
            return any(contains(item) for item in value.values())
        return query in js_string(value).lower()

    return [record for record in records if any(contains(value) for value in record.values())]


def _filter(records: list[Record], key: str, values: list[str]) -> list[Record]:
    """Keep the records matching one parameter: any of its values, or none of them for ``_ne``."""
    operator = _OPERATOR.search(key)
    suffix = operator.group(1) if operator else ""
    path = key[: operator.start()] if operator else key
    wanted = set(values)
    predicate: Callable[[Any], bool]
    if suffix == "_ne":
        predicate = lambda value: js_string(value) not in wanted  # noqa: E731
    elif suffix == "_like":
        try:
            patterns = [re.compile(value, re.IGNORECASE) for value in values]
        except re.error as exc:
            raise InvalidQuery(f"SyntaxError: Invalid regular expression: {exc}") from exc
        predicate = lambda value: any(p.search(js_string(value)) for p in patterns)  # noqa: E731
    elif suffix:
        wanted_sign = 1 if suffix == "_lte" else -1  # _gte keeps query <= value, _lte query >= value

        def predicate(value: Any) -> bool:
            signs = (js_compare(text, value) for text in values)
            return any(sign is not None and sign * wanted_sign >= 0 for sign in signs)

    else:
        predicate = lambda value: js_string(value) in wanted  # noqa: E731
    kept = []
    for record in records:
        found, value = path_get(record, path)
        if found and value is not None and predicate(value):
            kept.append(record)
    return kept


def _sort(records: list[Record], sort: str, order: str) -> list[Record]:
    """Sort like lodash ``orderBy(records, sort.split(","), order.split(","))``: stable, key by key."""
    keys = sort.split(",")
    orders = [part.lower() for part in order.split(",")]
    result = records
    # Stable sorts from the last key to the first equal one sort by all keys at once.
    for position in reversed(range(len(keys))):
        column = [sortable(*path_get(record, keys[position])) for record in result]
        numbers = {value[2] is None for value in column if value[0] == 0}
        by_key: Callable[[Sortable], Any]
        if numbers <= {True}:
            by_key = lambda value: (value[0], value[1])  # noqa: E731
        elif numbers == {False}:
            by_key = lambda value: (value[0], value[2] or b"")  # noqa: E731
        else:  # strings mixed with numbers: only the pairwise JavaScript comparison is right
            by_key = cmp_to_key(compare)
        descending = position < len(orders) and orders[position] == "desc"
        ranked = sorted(
            zip(column, result, strict=True), key=lambda pair: by_key(pair[0]), reverse=descending
        )
        result = [record for _, record in ranked]
    return result


def _paginate(records: list[Record], page: int, per_page: int, url: str) -> tuple[list[Record], str]:
    """Return one page and its ``Link`` value, as json-server's ``getPage`` and Express's ``res.links``."""
    items = records[(page - 1) * per_page : page * per_page]
    links: dict[str, int] = {}
    if items and len(items) != len(records):
        links["first"] = 1
    if items and page > 1:
        links["prev"] = page - 1
    if items and page * per_page < len(records):
        links["next"] = page + 1
    if items and len(items) != len(records):
        links["last"] = math.ceil(len(records) / per_page)
    # json-server rewrites the first "page=<current>" in the URL, wherever it is.
    return items, ", ".join(
        f'<{url.replace(f"page={page}", f"page={target}", 1)}>; rel="{rel}"' for rel, target in links.items()
    )
