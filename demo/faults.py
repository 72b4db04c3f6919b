"""Fault injection for the demo services: delays, errors, hangs and connection resets, changeable at run time.

One :class:`FaultConfig` describes what a service does wrong; :class:`FaultInjector` is its live state
(the config, how many ``fail_first`` failures are left, the random source). ``faults_middleware`` applies
it to every request except the admin endpoints, in this order, to the methods the config names:

1. wait ``delay_ms`` plus a random ``0..jitter_ms``;
2. ``hang``: never answer; the connection is dropped when the client goes away or the server shuts down;
3. ``reset``: abort the connection with a TCP reset, no response at all;
4. ``fail_first``: answer ``error_status`` to the next N requests, then recover;
5. ``error_rate``: answer ``error_status`` to that fraction of requests.

Admin endpoints (never faulted)::

    GET    /_faults   200 {"faults": {...FaultConfig fields...}, "remaining_fail_first": N}
    PUT    /_faults   body: FaultConfig fields as JSON (missing ones default); replaces the config
    DELETE /_faults   clears the config (no faults)

A bad body gets 400 ``{"error": "..."}``, another method 405.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

from aiohttp import web

__all__ = [
    "ADMIN_PATH",
    "FAULTS",
    "FaultConfig",
    "FaultInjector",
    "faults_middleware",
    "is_admin_path",
    "setup_faults",
]

ADMIN_PATH: Final = "/_faults"
_ADMIN_PATHS: Final = ("/_faults", "/_stats")
_HANG_POLL_S: Final = 0.05
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off", ""})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_admin_path(path: str) -> bool:
    """Return whether ``path`` is one of the demo's admin endpoints (``/_faults``, ``/_stats``)."""
    return any(path == admin or path.startswith(admin + "/") for admin in _ADMIN_PATHS)


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """What one demo service does wrong. The default injects nothing.

    Attributes:
        delay_ms: fixed delay before answering, in milliseconds (>= 0).
        jitter_ms: random extra delay, uniform in ``0..jitter_ms`` milliseconds (>= 0).
        error_rate: fraction of requests answered with ``error_status``, in ``0..1``.
        error_status: HTTP status of injected errors, ``400..599``.
        retry_after: value of the ``Retry-After`` header on injected errors (e.g. ``"1"``), or None.
        hang: never answer; the request ends only when the client gives up or the server shuts down.
        reset: abort every connection with a TCP reset instead of answering.
        fail_first: answer ``error_status`` to exactly the next N requests, then recover (>= 0).
        methods: HTTP methods the faults apply to (any case; kept upper-case), or None for all.
        seed: seed of the random source for ``jitter_ms`` and ``error_rate``, or None for a random one.
        cache_control: ``Cache-Control`` value put on every successful answer instead of json-server's
            ``no-cache`` (e.g. ``"no-store"`` or ``"max-age=60"``), or None to leave it alone.
        skip_first: let exactly the next N requests of the named methods through untouched before any
            fault applies (>= 0); with ``fail_first=1`` it fails only the (N+1)th request.

    Raises:
        ValueError: a value is out of range.
    """

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    retry_after: str | None = None
    hang: bool = False
    reset: bool = False
    fail_first: int = 0
    methods: tuple[str, ...] | None = None
    seed: int | None = None
    cache_control: str | None = None
    skip_first: int = 0

    def __post_init__(self) -> None:
        if not (0 <= self.delay_ms < math.inf and 0 <= self.jitter_ms < math.inf):
            raise ValueError("delay_ms and jitter_ms must be finite and >= 0")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")
        if not 400 <= self.error_status <= 599:
            raise ValueError("error_status must be between 400 and 599")
        if self.fail_first < 0 or self.skip_first < 0:
            raise ValueError("fail_first and skip_first must be >= 0")
        if self.methods is not None:
            object.__setattr__(self, "methods", tuple(method.upper() for method in self.methods))

    def applies_to(self, method: str) -> bool:
        """Return whether the faults apply to requests with this HTTP method."""
        return self.methods is None or method.upper() in self.methods

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict (``methods`` as a list)."""
        data: dict[str, Any] = {field.name: getattr(self, field.name) for field in fields(self)}
        if self.methods is not None:
            data["methods"] = list(self.methods)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultConfig:
        """Build a config from decoded JSON: field name -> value; missing fields keep their defaults.

        Raises:
            ValueError: an unknown field, a value of the wrong type, or a value out of range.
        """
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            values[name] = _check_json_field(name, value)
        return cls(**values)

    @classmethod
    def from_env(cls, prefix: str, environ: Mapping[str, str]) -> FaultConfig:
        """Build a config from variables named ``<PREFIX>_<FIELD>``, e.g. ``DEMO_CATALOG_DELAY_MS=200``.

        ``prefix`` is given with or without its trailing underscore. Booleans are ``1/true/yes/on`` or
        ``0/false/no/off``; ``METHODS`` is comma-separated. Without any such variable this returns
        ``FaultConfig()``, which injects nothing.

        Raises:
            ValueError: a variable that does not parse, naming it.
        """
        stem = prefix.rstrip("_")
        values: dict[str, Any] = {}
        for field in fields(cls):
            variable = f"{stem}_{field.name.upper()}"
            raw = environ.get(variable)
            if raw is None:
                continue
            try:
                values[field.name] = _parse_env_field(field.name, raw.strip())
            except ValueError as exc:
                raise ValueError(f"{variable}={raw!r}: {exc}") from exc
        try:
            return cls(**values)
        except ValueError as exc:
            raise ValueError(f"{stem}_*: {exc}") from exc


def _check_json_field(name: str, value: Any) -> Any:
    """Return one JSON field's value in the type ``FaultConfig`` wants, or raise ValueError."""
    if name in ("delay_ms", "jitter_ms", "error_rate"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number")
        return float(value)
    if name in ("error_status", "fail_first", "skip_first"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer")
        return value
    if name == "seed":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError("seed must be an integer or null")
        return value
    if name in ("hang", "reset"):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be a boolean")
        return value
    if name == "cache_control":
        if value is not None and not isinstance(value, str):
            raise ValueError("cache_control must be a string or null")
        return value
    if name == "retry_after":
        # An integer is accepted because it is the common form of the header (delay in seconds).
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
            raise ValueError("retry_after must be a string, an integer or null")
        return None if value is None else str(value)
    if value is not None and not (isinstance(value, list) and all(isinstance(m, str) for m in value)):
        raise ValueError("methods must be a list of strings or null")
    return None if value is None else tuple(value)


def _parse_env_field(name: str, raw: str) -> Any:
    """Return one environment variable's value in the type ``FaultConfig`` wants, or raise ValueError."""
    if name in ("delay_ms", "jitter_ms", "error_rate"):
        return float(raw)
    if name in ("error_status", "fail_first", "skip_first"):
        return int(raw)
    if name == "seed":
        return int(raw) if raw else None
    if name in ("hang", "reset"):
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ValueError("expected one of 1/true/yes/on or 0/false/no/off")
    if name in ("retry_after", "cache_control"):
        return raw or None
    methods = tuple(method.strip() for method in raw.split(",") if method.strip())
    return methods or None


class FaultInjector:
    """The live faults of one service: the config, the ``fail_first`` budget left and the random source."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._closing = asyncio.Event()
        self.configure(config or FaultConfig())

    @property
    def config(self) -> FaultConfig:
        """The config in force."""
        return self._config

    @property
    def remaining_fail_first(self) -> int:
        """How many of the ``fail_first`` failures are still to come."""
        return self._remaining

    def configure(self, config: FaultConfig) -> None:
        """Replace the config, restart the ``fail_first`` budget and re-seed the random source."""
        self._config = config
        self._remaining = config.fail_first
        self._skip = config.skip_first
        self._random = random.Random(config.seed)

    def snapshot(self) -> dict[str, Any]:
        """Return the JSON body of ``GET /_faults``."""
        return {"faults": self._config.to_dict(), "remaining_fail_first": self._remaining}

    async def release(self, _app: web.Application | None = None) -> None:
        """Let every hanging request go (drop its connection); used as an ``on_shutdown`` hook."""
        self._closing.set()

    async def inject(self, request: web.Request) -> web.StreamResponse | None:
        """Apply the faults to one request: return the response to send instead, or None to go on."""
        config = self._config
        if not config.applies_to(request.method):
            return None
        if self._skip > 0:
            self._skip -= 1
            return None
        delay_ms = config.delay_ms
        if config.jitter_ms:
            delay_ms += self._random.uniform(0.0, config.jitter_ms)
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        if config.hang:
            await self._hang(request)
            return _dropped(request)
        if config.reset:
            return _dropped(request)
        if self._remaining > 0:
            self._remaining -= 1
            return _error_response(config)
        if config.error_rate and self._random.random() < config.error_rate:
            return _error_response(config)
        return None

    async def _hang(self, request: web.Request) -> None:
        # aiohttp does not cancel a handler when its client goes away, so poll the transport.
        while not self._closing.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), _HANG_POLL_S)


def _error_response(config: FaultConfig) -> web.Response:
    headers = {} if config.retry_after is None else {"Retry-After": config.retry_after}
    body = {"error": "injected fault", "status": config.error_status}
    return web.json_response(body, status=config.error_status, headers=headers)


def _dropped(request: web.Request) -> web.Response:
    """Abort the request's connection with a TCP reset; the returned response is never sent."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # A zero linger time makes close() send RST instead of FIN: the client sees a reset.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    # aiohttp treats the failed write of this response as a premature client disconnection.
    return web.Response(status=499)


FAULTS: Final = web.AppKey("faults", FaultInjector)


@web.middleware
async def faults_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply the app's faults (under ``FAULTS``) to every request except the admin endpoints."""
    if is_admin_path(request.path):
        return await handler(request)
    faults = request.app[FAULTS]
    injected = await faults.inject(request)
    if injected is not None:
        return injected
    response = await handler(request)
    cache_control = faults.config.cache_control
    if cache_control is not None and response.status < 400 and not response.prepared:
        response.headers["Cache-Control"] = cache_control
    return response


_NO_STORE: Final = {"Cache-Control": "no-store"}


async def _get_faults(request: web.Request) -> web.Response:
    return web.json_response(request.app[FAULTS].snapshot(), headers=_NO_STORE)


async def _put_faults(request: web.Request) -> web.Response:
    try:
        data = json.loads(await request.read() or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return web.json_response({"error": f"invalid JSON: {exc}"}, status=400)
    if not isinstance(data, dict):
        return web.json_response({"error": "expected a JSON object of fault fields"}, status=400)
    try:
        config = FaultConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    injector = request.app[FAULTS]
    injector.configure(config)
    return web.json_response(injector.snapshot(), headers=_NO_STORE)


async def _delete_faults(request: web.Request) -> web.Response:
    injector = request.app[FAULTS]
    injector.configure(FaultConfig())
    return web.json_response(injector.snapshot(), headers=_NO_STORE)


async def _faults_not_allowed(_request: web.Request) -> web.Response:
    headers = {**_NO_STORE, "Allow": "GET, PUT, DELETE"}
    return web.json_response({"error": "method not allowed"}, status=405, headers=headers)


def setup_faults(app: web.Application, config: FaultConfig | None = None) -> FaultInjector:
    """Store a ``FaultInjector`` under ``FAULTS``, add the ``/_faults`` routes and the shutdown hook.

    The caller puts ``faults_middleware`` in the app's middlewares. Returns the injector.
    """
    injector = FaultInjector(config)
    app[FAULTS] = injector
    app.on_shutdown.append(injector.release)
    app.router.add_get(ADMIN_PATH, _get_faults)
    app.router.add_put(ADMIN_PATH, _put_faults)
    app.router.add_delete(ADMIN_PATH, _delete_faults)
    app.router.add_route("*", ADMIN_PATH, _faults_not_allowed)
    return injector
