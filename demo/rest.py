"""One demo REST service: several resources behind the conventions of json-server 0.17.4.

The BFF must work unchanged against real json-server, so this mimics it down to its JavaScript
semantics (values compared as ``String(value)``, lodash ``orderBy`` ordering, ``parseInt`` parsing)::

    GET    /{resource}              list; ?field=v&field=w (OR), field_ne/_lte/_gte/_like, q, _sort+_order,
                                    _page+_limit (X-Total-Count, Link), _start+_end|_limit, _embed, _expand
    GET    /{resource}/{id}         one record, or 404 {}
    POST   /{resource}              201 with the record (id = max + 1 unless given) and Location
    PUT    /{resource}/{id}         200, replaces the record but keeps its id; 404 {} when missing
    PATCH  /{resource}/{id}         200, merges into the record; 404 {} when missing
    DELETE /{resource}/{id}         200 {}, then removes records whose ``<thing>Id`` dangles; 404 {}
    GET    /{parent}/{id}/{resource}   list filtered by ``<singular parent>Id``; POST there sets it
    GET    /db                      every resource

Every response has ``Cache-Control: no-cache``; JSON is ``application/json; charset=utf-8``, pretty
printed, with a weak ``ETag``, and ``If-None-Match`` on a GET gives 304. ``?_delay=ms`` delays an
answer. Anything else is 404 ``{}``. ``/_stats`` and ``/_faults`` are the demo's own admin endpoints.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from aiohttp import web

from bff_chinook.demo.chinook import Record
from bff_chinook.demo.faults import FaultConfig, faults_middleware, setup_faults
from bff_chinook.demo.jsvalues import DECIMAL, js_copy, js_string, plural, singular, strict_equal, truthy
from bff_chinook.demo.query import InvalidQuery, Params, run_list_query
from bff_chinook.demo.stats import setup_stats, stats_middleware
from bff_chinook.demo.store import DuplicateIdError, ResourceStore

__all__ = ["SERVICE_NAME", "STORE", "create_service_app"]

_MAX_BODY: Final = 10 * 1024 * 1024  # body-parser's limit in json-server
_QS_PARAMETER_LIMIT: Final = 1000  # qs ignores query parameters past this many
_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_NOT_CALLBACK_CHAR: Final = re.compile(r"[^\[\]\w$.]", re.ASCII)
_NO_CACHE_REQUEST: Final = re.compile(r"(?:^|,)\s*?no-cache\s*?(?:,|$)")
_JSON: Final = "application/json"


class _BadBody(ValueError):
    """A body that Express's body parser rejects: 400 with a plain-text error."""


STORE: Final = web.AppKey("store", ResourceStore)
SERVICE_NAME: Final = web.AppKey("service_name", str)


# Responses ---------------------------------------------------------------------------------------


def _weak_etag(body: bytes) -> str:
    """Return Express's default ETag: ``W/"<length in hex>-<27 chars of base64 SHA-1>"``."""
    digest = base64.b64encode(hashlib.sha1(body).digest()).decode()[:27]
    return f'W/"{len(body):x}-{digest}"'


def _is_fresh(request: web.Request, etag: str) -> bool:
    """Return whether the client's cached copy is current, as the ``fresh`` package decides for Express."""
    none_match = request.headers.get("If-None-Match")
    if request.headers.get("If-Modified-Since"):
        return False  # no Last-Modified is ever sent, so the date check always fails
    if not none_match or _NO_CACHE_REQUEST.search(request.headers.get("Cache-Control", "")):
        return False
    if none_match == "*":
        return True
    tokens = [token for token in re.split(r"[ ,]+", none_match) if token]
    return any(token in (etag, "W/" + etag) or "W/" + token == etag for token in tokens)


def _send(
    request: web.Request,
    body: bytes,
    *,
    status: int = 200,
    content_type: str = _JSON,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """Answer like Express's ``res.send``: ETag on every body, 304 for a fresh GET/HEAD."""
    all_headers = dict(headers or {})
    etag = all_headers["ETag"] = _weak_etag(body)
    if request.method in ("GET", "HEAD") and 200 <= status < 300 and _is_fresh(request, etag):
        return web.Response(status=304, headers=all_headers)
    return web.Response(
        body=body, status=status, headers=all_headers, content_type=content_type, charset="utf-8"
    )


def _render(
    request: web.Request,
    params: Params,
    data: Any,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """Answer like ``res.jsonp``: pretty JSON, or a JSONP call when ``?callback=`` is given."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    # Node's JSON.stringify escapes lone surrogates, which UTF-8 cannot carry.
    text = _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
    all_headers = {"X-Content-Type-Options": "nosniff", **(headers or {})}
    callback = params.get("callback", [""])[0]
    if not callback:
        return _send(request, text.encode(), status=status, headers=all_headers)
    name = _NOT_CALLBACK_CHAR.sub("", callback)
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    body = f"/**/ typeof {name} === 'function' && {name}({text});".encode()
    return _send(request, body, status=status, content_type="text/javascript", headers=all_headers)


async def _add_no_cache(_request: web.Request, response: web.StreamResponse) -> None:
    # json-server sends these on every response (an old fix for IE caching).
    response.headers.setdefault("Cache-Control", "no-cache")
    response.headers.setdefault("Pragma", "no-cache")
    response.headers.setdefault("Expires", "-1")


# Requests ----------------------------------------------------------------------------------------


def _query_params(request: web.Request) -> Params:
    """Return the query as qs parses it for Express: name -> values in order, ``name[]`` as ``name``."""
    params: Params = {}
    for position, (key, value) in enumerate(request.query.items()):
        if position >= _QS_PARAMETER_LIMIT:
            break
        params.setdefault(key.removesuffix("[]"), []).append(value)
    return params


async def _read_body(request: web.Request) -> Record:
    """Return the body as json-server's body parsers do: JSON or a form; anything else is ``{}``.

    Raises:
        _BadBody: malformed JSON or JSON that is not an object.
    """
    if request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        body: Record = {}
        for key in form:
            values = [str(value) for value in form.getall(key)]
            body[key] = values[0] if len(values) == 1 else values
        return body
    if request.content_type != _JSON:
        return {}
    raw = await request.read()
    if not raw.strip():
        return {}

    def reject(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    try:
        data = json.loads(raw, parse_constant=reject)
    except ValueError as exc:
        raise _BadBody(f"SyntaxError: {exc}") from exc
    if not isinstance(data, dict):
        raise _BadBody("expected a JSON object")
    return dict(js_copy(data))


async def _pause(values: list[str] | None) -> None:
    """Wait ``?_delay=`` milliseconds, clamped as Node's ``setTimeout`` clamps."""
    match = DECIMAL.match(values[0].strip()) if values else None
    if match is None:
        return
    delay_ms = float(match.group())
    await asyncio.sleep((delay_ms if 1 <= delay_ms <= 2**31 - 1 else 1) / 1000)


# Handlers ----------------------------------------------------------------------------------------


def _with_relations(store: ResourceStore, name: str, record: Record, params: Params) -> Record:
    """Return ``record``, or a copy with the ``?_embed=`` children and ``?_expand=`` parents added."""
    if not params.get("_embed") and not params.get("_expand"):
        return record
    record = js_copy(record)
    foreign_key = singular(name) + "Id"
    for child in params.get("_embed", []):
        rows = store.collections.get(child, [])
        record[child] = [row for row in rows if strict_equal(row.get(foreign_key), record.get("id"))]
    for parent in params.get("_expand", []):
        parents = plural(parent)
        if parents not in store.collections:
            continue
        parent_id = record.get(parent + "Id")
        target = None if parent_id is None else store.get(parents, parent_id)
        if target is None:
            record.pop(parent, None)  # JSON.stringify drops the undefined json-server assigns
        else:
            record[parent] = js_copy(target)
    return record


def _list(request: web.Request, store: ResourceStore, name: str, params: Params) -> web.Response:
    relations = {key: params.get(key, []) for key in ("_embed", "_expand")}
    url = f"{request.scheme}://{request.host}{request.raw_path}"
    select = functools.partial(store.select, name)
    page = run_list_query(store.collections[name], params, url=url, select_ids=select)
    records = [_with_relations(store, name, record, relations) for record in page.records]
    return _render(request, params, records, headers=page.headers)


def _create(
    request: web.Request, store: ResourceStore, name: str, body: Record, params: Params
) -> web.Response:
    if not truthy(body.get("id")):
        body["id"] = store.new_id(name)
    store.insert(name, body)
    location = f"{request.scheme}://{request.host}{request.raw_path}/{js_string(body['id'])}"
    headers = {"Location": location, "Access-Control-Expose-Headers": "Location"}
    return _render(request, params, body, status=201, headers=headers)


def _not_found(request: web.Request, params: Params) -> web.Response:
    return _render(request, params, {}, status=404)


async def _dispatch(request: web.Request) -> web.StreamResponse:
    """Route a request the way json-server's Express routers would."""
    store = request.app[STORE]
    params = _query_params(request)
    method = "GET" if request.method == "HEAD" else request.method
    path = request.path[:-1] if request.path.endswith("/") and request.path != "/" else request.path
    segments = path.split("/")[1:]
    try:
        body = await _read_body(request) if method in ("POST", "PUT", "PATCH") else {}
        if segments == ["db"] and method == "GET":
            return _render(request, params, store.collections)
        await _pause(params.pop("_delay", None))
        if len(segments) == 3 and method in ("GET", "POST") and all(segments):
            parent, parent_id, child = segments
            if method == "GET":
                params[singular(parent) + "Id"] = [parent_id]
            else:
                body[singular(parent) + "Id"] = parent_id
            segments = [child]
        name = store.resolve(segments[0]) if 1 <= len(segments) <= 2 and all(segments) else None
        if name is None:
            return _not_found(request, params)
        if len(segments) == 1:
            if method == "GET":
                return _list(request, store, name, params)
            if method == "POST":
                return _create(request, store, name, body, params)
            return _not_found(request, params)
        return _item(request, store, name, segments[1], body, params)
    except _BadBody as exc:  # Express's final handler answers, without an ETag
        headers = {"X-Content-Type-Options": "nosniff"}
        return web.Response(text=str(exc), status=400, content_type="text/html", headers=headers)
    except (DuplicateIdError, InvalidQuery) as exc:  # json-server's error handler: 500 and the error
        return _send(request, str(exc).encode(), status=500, content_type="text/html")


def _item(
    request: web.Request, store: ResourceStore, name: str, record_id: str, body: Record, params: Params
) -> web.Response:
    """Answer GET, PUT, PATCH or DELETE of ``/{name}/{record_id}``; anything else is 404."""
    record = store.get(name, record_id)
    if request.method == "DELETE":
        store.remove(name, record_id)
        store.remove_dangling()
        return _not_found(request, params) if record is None else _render(request, params, {})
    if record is None or request.method not in ("GET", "HEAD", "PUT", "PATCH"):
        return _not_found(request, params)
    if request.method in ("GET", "HEAD"):
        return _render(request, params, _with_relations(store, name, record, params))
    own_id = record["id"]
    if request.method == "PUT":
        record.clear()
    record.update(body)
    record["id"] = own_id
    return _render(request, params, record)


def create_service_app(
    name: str,
    resources: Mapping[str, Sequence[Record]],
    *,
    faults: FaultConfig | None = None,
    routes: Sequence[web.RouteDef] = (),
) -> web.Application:
    """Return an aiohttp app serving ``resources`` (name -> records with an ``id``) like json-server.

    The records are deep-copied, so apps never share state and the caller's data is never changed.
    ``name`` is the service's name (``"catalog"``), stored under ``SERVICE_NAME``; ``faults`` is the
    initial fault config, changeable at run time through ``/_faults``. ``routes`` are served before
    the json-server routes (a service with behaviour of its own, such as the demo payments service).

    Raises:
        ValueError: a resource name contains ``/``, or two records of a resource share an id.
    """
    app = web.Application(middlewares=[stats_middleware, faults_middleware], client_max_size=_MAX_BODY)
    app[SERVICE_NAME] = name
    app[STORE] = ResourceStore(resources)
    setup_stats(app)
    setup_faults(app, faults)
    app.router.add_routes(routes)
    app.router.add_route("*", "/{path:.*}", _dispatch)
    app.on_response_prepare.append(_add_no_cache)
    return app
