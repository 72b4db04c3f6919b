"""Settings: one frozen object built once from the environment.

Every variable starts with ``BFF_``. Per-service settings use ``BFF_SERVICE_<NAME>_<FIELD>``, e.g.
``BFF_SERVICE_CATALOG_URL`` or ``BFF_SERVICE_SALES_READ_TIMEOUT_MS``. Nothing else in the code base
reads ``os.environ``: :func:`load_settings` is called once by the CLI (or by tests with a mapping).
The standard variables of OpenTelemetry (``OTEL_*``) and prometheus-client
(``PROMETHEUS_MULTIPROC_DIR``) keep their own names; :func:`load_settings` copies them into
:attr:`Settings.telemetry_env` (see :mod:`bff.telemetry`).

Durations are integers in milliseconds (``*_MS``); sizes are in bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

DEFAULT_APP = "bff_chinook.schema:app"
"""The app ``bff serve`` serves without ``--app`` or ``BFF_APP``: the Chinook graph."""

PREFIX = "BFF_"
SERVICE_PREFIX = "BFF_SERVICE_"
TELEMETRY_PREFIX = "OTEL_"
TELEMETRY_VARIABLES = frozenset({"PROMETHEUS_MULTIPROC_DIR"})
"""Variables outside ``BFF_`` that the settings keep, by their standard names (with ``OTEL_*``)."""

Milliseconds = Annotated[int, Field(gt=0, le=3_600_000)]

MIN_HS256_SECRET_BYTES = 32
"""RFC 7518 section 3.2: an HS256 key must be at least as long as the hash output (256 bits)."""


def _comma_list(value: Any) -> Any:
    """A comma-separated environment value as a tuple of its non-empty, stripped items."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


SecretList = Annotated[tuple[SecretStr, ...], BeforeValidator(_comma_list)]
"""A list of secrets written as ``s1,s2`` in the environment; never shown in logs or reprs."""


class ServiceSettings(BaseModel):
    """How to reach and call one downstream REST service."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: AnyHttpUrl
    """Base URL of the service, e.g. ``http://127.0.0.1:8002``; resources are paths below it."""
    connect_timeout_ms: Milliseconds = 1_000
    """Time allowed to open a TCP connection (and TLS handshake)."""
    read_timeout_ms: Milliseconds = 5_000
    """Time allowed between bytes of a response."""
    pool_size: Annotated[int, Field(ge=1, le=10_000)] = 100
    """Most connections open to the service at once (the httpx pool limit)."""
    max_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 100
    """Most keys a DataLoader puts in one batched GET."""
    max_url_length: Annotated[int, Field(ge=256, le=65_536)] = 2_000
    """Longest URL (bytes) a batched GET may have; batches are split to stay under it."""
    retry_attempts: Annotated[int, Field(ge=1, le=20)] = 3
    """Most attempts of one idempotent call (1 turns retries off)."""
    retry_wait_initial_ms: Annotated[int, Field(ge=0, le=60_000)] = 50
    """Backoff before the first retry; it doubles per attempt, plus random jitter up to as much."""
    retry_wait_max_ms: Annotated[int, Field(ge=0, le=60_000)] = 1_000
    """Longest backoff between two attempts."""
    retry_after_max_ms: Annotated[int, Field(ge=0, le=3_600_000)] = 5_000
    """Longest ``Retry-After`` the BFF waits for; a longer one gives up with ``RATE_LIMITED``."""
    breaker_threshold: Annotated[int, Field(ge=1, le=1_000_000)] = 5
    """Consecutive failed calls that open the circuit breaker."""
    breaker_recovery_ms: Milliseconds = 10_000
    """How long the breaker stays open before it lets one probe call through (half-open)."""
    max_concurrency: Annotated[int, Field(ge=1, le=100_000)] = 100
    """Bulkhead: most calls in progress at once; more wait in a queue."""
    max_queue: Annotated[int, Field(ge=0, le=1_000_000)] = 1_000
    """Bulkhead: most calls waiting for a slot; beyond it calls fail at once (``DOWNSTREAM_UNAVAILABLE``)."""
    cache_ttl_ms: Annotated[int, Field(ge=0, le=86_400_000)] = 0
    """Cache lifetime of an answer whose ``Cache-Control`` gives none (json-server's ``no-cache``
    counts as none); 0: such answers are not cached. A ``max-age`` or ``s-maxage`` the service sends
    is honoured whatever this is."""
    stale_if_error_ms: Annotated[int, Field(ge=0, le=86_400_000)] = 60_000
    """How long past its lifetime a cached entity may still be served while the service fails."""
    max_response_bytes: Annotated[int, Field(ge=1_024, le=1_073_741_824)] = 32_000_000
    """Largest answer body (bytes, as sent and once decoded) the BFF reads from the service; a larger
    one is ``DOWNSTREAM_ERROR`` and never retried. Bounds what one answer, a gzip bomb among them,
    can cost in memory."""

    @property
    def base_url(self) -> str:
        """The URL as a string without a trailing slash."""
        return str(self.url).rstrip("/")


class Settings(BaseModel):
    """Everything the BFF is configured with. Build it with :func:`load_settings`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profile: Literal["development", "production"] = "development"
    """``production`` (``BFF_PROFILE``) changes the defaults to :data:`PRODUCTION_DEFAULTS` (explicit
    variables still win) and refuses to start without authentication configured."""
    app: str = DEFAULT_APP
    """The app to serve, as ``MODULE:ATTRIBUTE`` (``BFF_APP``; ``bff serve --app`` wins)."""
    host: str = "127.0.0.1"
    """Interface to listen on (``BFF_HOST``)."""
    port: Annotated[int, Field(ge=0, le=65_535)] = 8000
    """TCP port to listen on (``BFF_PORT``); 0 picks a free one."""
    graphql_path: str = "/graphql"
    """Path of the GraphQL endpoint and the GraphiQL playground (``BFF_GRAPHQL_PATH``)."""
    graphiql: bool = True
    """Serve the GraphiQL playground on GET with ``Accept: text/html`` (``BFF_GRAPHIQL``)."""
    graphiql_assets_dir: Path | None = None
    """A ``node_modules`` directory holding GraphiQL's files (``BFF_GRAPHIQL_ASSETS_DIR``); default:
    the one ``npm ci --prefix bff/graphiql`` fills."""
    log_level: str = "INFO"
    """Python logging level name (``BFF_LOG_LEVEL``); ``DEBUG`` adds a line per downstream request."""
    log_format: Literal["json", "console"] | None = None
    """``json`` (one JSON object per line) or ``console`` (readable ``key=value`` text)
    (``BFF_LOG_FORMAT``); unset: ``console`` when stderr is a terminal, else ``json``."""
    # Operating it (issue 10); see README "Operate it".
    metrics: bool = True
    """Collect Prometheus metrics and serve them at ``/metrics`` (``BFF_METRICS``)."""
    metrics_port: Annotated[int, Field(ge=0, le=65_535)] | None = None
    """Serve ``/metrics`` on this port of ``BFF_HOST`` only, not on the main port (``BFF_METRICS_PORT``);
    0 picks a free one. Unset: ``/metrics`` on the main port."""
    telemetry_env: dict[str, str] = Field(default_factory=dict)
    """The ``OTEL_*`` and ``PROMETHEUS_MULTIPROC_DIR`` variables as found in the environment, by their
    standard names: tracing (:mod:`bff.telemetry.tracing`) and multiprocess metrics read them here."""
    federation: bool = False
    """Serve the graph as an Apollo Federation 2 subgraph (``BFF_FEDERATION``): ``_service { sdl }``
    with ``@link`` to the federation spec, ``@key(fields: "id")`` on the app's ``bff.entity`` types
    and ``_entities`` loading them through the batched loaders; ``bff schema`` prints the subgraph SDL."""
    # Protection of the endpoint (issue 4); see README "Protect the endpoint".
    max_body_bytes: Annotated[int, Field(ge=1_024, le=100_000_000)] = 100_000
    """Largest request body accepted; larger ones get HTTP 413 (``BFF_MAX_BODY_BYTES``)."""
    max_requests_per_client: Annotated[int, Field(ge=1, le=1_000_000)] = 200
    """Most requests one client IP may have in progress at once, WebSockets and SSE streams included;
    past it, HTTP 429 ``TOO_MANY_CONNECTIONS`` (``BFF_MAX_REQUESTS_PER_CLIENT``)."""
    idle_timeout_ms: Milliseconds = 15_000
    """A connection that sends no complete request (headers included) within this time is closed, as
    is a keep-alive connection idle as long (``BFF_IDLE_TIMEOUT_MS``)."""
    max_string_bytes: Annotated[int, Field(ge=16, le=100_000_000)] = 4_096
    """Longest string a variable or a literal argument may hold, in UTF-8 bytes; longer ones are
    ``BAD_USER_INPUT`` before any downstream call (``BFF_MAX_STRING_BYTES``)."""
    max_tokens: Annotated[int, Field(ge=10, le=1_000_000)] = 5_000
    """Most lexical tokens in a GraphQL document (``BFF_MAX_TOKENS``)."""
    max_depth: Annotated[int, Field(ge=1, le=1_000)] = 20
    """Deepest field nesting of an operation, fragments expanded (``BFF_MAX_DEPTH``); GraphiQL's
    introspection query is 15 deep."""
    max_cost: Annotated[int, Field(ge=1, le=1_000_000_000)] = 50_000
    """Highest cost of an operation per the cost map in ``bff/cost_map.py`` (``BFF_MAX_COST``)."""
    max_items: Annotated[int, Field(ge=1, le=100_000_000)] = 50_000
    """Most items (nodes of lists, connections and relationship fields) one operation or subscription
    event may resolve; past it fields fail with ``OPERATION_BUDGET_EXCEEDED`` (``BFF_MAX_ITEMS``)."""
    default_list_size: Annotated[int, Field(ge=1, le=100_000)] = 10
    """Items a list without a bound counts for in the cost (``BFF_DEFAULT_LIST_SIZE``)."""
    max_aliases: Annotated[int, Field(ge=0, le=100_000)] = 30
    """Most aliased fields in a document (``BFF_MAX_ALIASES``)."""
    max_root_fields: Annotated[int, Field(ge=1, le=100_000)] = 20
    """Most top-level fields in one operation (``BFF_MAX_ROOT_FIELDS``)."""
    introspection: bool = True
    """Answer ``__schema`` and ``__type`` queries (``BFF_INTROSPECTION``); turn off in production."""
    field_suggestions: bool = True
    """Keep "Did you mean ...?" hints in error messages (``BFF_FIELD_SUGGESTIONS``)."""
    compiled_execution: bool = True
    """Run query operations by a plan compiled once per document (``BFF_COMPILED_EXECUTION``,
    :mod:`bff.operation.compiled`); off, graphql-core executes every operation."""
    auth_required: bool = False
    """Fields with customer data need a principal (``BFF_AUTH_REQUIRED``); when off, anonymous
    requests see everything (development only)."""
    jwt_hs256_secret: SecretStr | None = None
    """Shared secret of HS256 bearer tokens (``BFF_JWT_HS256_SECRET``), at least 32 bytes in UTF-8
    (RFC 7518 section 3.2; a shorter one stops start-up); unset: HS256 is refused."""
    jwt_jwks_file: Path | None = None
    """A JWKS (JSON) file with the RS256 public keys (``BFF_JWT_JWKS_FILE``)."""
    jwt_jwks_url: AnyHttpUrl | None = None
    """A JWKS URL with the RS256 public keys, fetched at start-up and on an unknown ``kid``
    (``BFF_JWT_JWKS_URL``)."""
    jwt_issuer: str | None = None
    """Required ``iss`` of tokens (``BFF_JWT_ISSUER``); unset: not checked."""
    jwt_audience: str | None = None
    """Required ``aud`` of tokens (``BFF_JWT_AUDIENCE``); unset: tokens with an ``aud`` are refused."""
    jwt_leeway_ms: Annotated[int, Field(ge=0, le=600_000)] = 30_000
    """Clock skew allowed when checking ``exp`` and ``nbf`` (``BFF_JWT_LEEWAY_MS``)."""
    api_keys: dict[str, str] = Field(default_factory=dict)
    """API keys as a JSON object: SHA-256 hex digest of the key -> principal ``"employee:<name>"`` or
    ``"customer:<id>"`` (``BFF_API_KEYS``); clients send the key in ``X-Api-Key``."""
    forward_authorization: bool = True
    """Forward the client's ``Authorization`` header to downstream services
    (``BFF_FORWARD_AUTHORIZATION``)."""
    auth_failure_limit: str = "10/minute"
    """Failed authentications allowed per client IP, e.g. ``10/minute`` (``BFF_AUTH_FAILURE_LIMIT``,
    the ``limits`` notation); past it, requests with credentials from that IP get 429 with
    ``RATE_LIMITED`` and ``Retry-After`` (seconds) without being checked. Counted in the process;
    behind a proxy all clients share its IP, and so share this limit."""
    rate_limit: str | None = None
    """Requests allowed per principal (or client IP when anonymous), e.g. ``100/minute``
    (``BFF_RATE_LIMIT``, the ``limits`` notation); unset: no rate limit."""
    rate_limit_by_cost: bool = False
    """Count each operation's cost instead of 1 against the rate limit (``BFF_RATE_LIMIT_BY_COST``)."""
    rate_limit_storage_url: str | None = None
    """Where rate-limit counters live, a ``limits`` storage URL (``BFF_RATE_LIMIT_STORAGE_URL``), e.g.
    ``redis://host:6379/0``; unset: the Redis of ``BFF_REDIS_URL`` when set, else ``memory://`` (in the
    process)."""
    apq: bool = True
    """Apollo automatic persisted queries: register and run documents by SHA-256 hash (``BFF_APQ``)."""
    apq_cache_bytes: Annotated[int, Field(ge=1_024, le=10_000_000_000)] = 16_000_000
    """Most bytes of documents the in-process APQ store keeps, least recently used dropped first
    (``BFF_APQ_CACHE_BYTES``): a client chooses every document, so the bound is in bytes."""
    apq_cache_size: Annotated[int, Field(ge=1, le=10_000_000)] = 10_000
    """With Redis: most documents the shared APQ store keeps, least recently used dropped first
    (``BFF_APQ_CACHE_SIZE``); each is at most ``BFF_MAX_BODY_BYTES``, so it is bounded in bytes too."""
    persisted_queries_manifest: Path | None = None
    """Safelist mode: only documents in this JSON manifest run (``BFF_PERSISTED_QUERIES_MANIFEST``)."""
    cors_allowed_origins: tuple[str, ...] = ()
    """Origins (comma-separated) whose pages may call the endpoint and open WebSockets; ``*`` allows
    any (``BFF_CORS_ALLOWED_ORIGINS``)."""
    csrf_prevention: bool = False
    """Refuse requests a browser could send cross-site without a preflight: without a non-simple
    ``Content-Type`` they need an ``apollo-require-preflight`` or ``x-apollo-operation-name`` header
    (``BFF_CSRF_PREVENTION``)."""
    operation_timeout_ms: Milliseconds = 10_000
    """Deadline of one GraphQL operation; no downstream call outlives it (``BFF_OPERATION_TIMEOUT_MS``)."""
    cache_max_entries: Annotated[int, Field(ge=0, le=100_000_000)] = 100_000
    """Most entries the in-process entity cache holds (``BFF_CACHE_MAX_ENTRIES``)."""
    response_cache: bool = False
    """Keep whole results of anonymous queries whose every downstream answer may be cached, for the
    shortest lifetime among them, until a mutation invalidates what they read (``BFF_RESPONSE_CACHE``;
    :mod:`bff.operation.response_cache`)."""
    response_cache_bytes: Annotated[int, Field(ge=1_024, le=100_000_000_000)] = 64_000_000
    """Most bytes of results the response cache keeps in the process, least recently used dropped
    first (``BFF_RESPONSE_CACHE_BYTES``; a result weighs its data as compact JSON)."""
    services: dict[str, ServiceSettings] = Field(default_factory=dict)
    """Per-service settings, keyed by the service names the app declares."""

    # Mutations, webhooks and subscriptions (issue 5).
    webhook_secrets: SecretList = ()
    """Standard Webhooks secrets (``whsec_<base64>``) accepted on ``POST /webhooks/payments``, comma
    separated (``BFF_WEBHOOK_SECRETS``); several at once while a secret is rotated. Empty: the
    endpoint answers 503."""
    webhook_tolerance_s: Annotated[int, Field(ge=1, le=300)] = 300
    """Most seconds a webhook's timestamp may be off from now (``BFF_WEBHOOK_TOLERANCE_S``); older
    deliveries are rejected as replays. At most 300, the limit of the ``standardwebhooks`` package."""
    webhook_max_body_bytes: Annotated[int, Field(ge=1_024, le=10_485_760)] = 65_536
    """Largest webhook body accepted (``BFF_WEBHOOK_MAX_BODY_BYTES``); larger ones get 413."""
    webhook_queue_size: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    """Most accepted webhooks waiting to be processed (``BFF_WEBHOOK_QUEUE_SIZE``); past it new
    ones get 503, so the sender retries later."""
    idempotency_ttl_s: Annotated[int, Field(ge=1, le=30 * 86_400)] = 86_400
    """How long idempotency keys and webhook ids are remembered (``BFF_IDEMPOTENCY_TTL_S``)."""
    idempotency_max_keys: Annotated[int, Field(ge=1, le=100_000_000)] = 100_000
    """Most idempotency keys and webhook ids remembered in memory (``BFF_IDEMPOTENCY_MAX_KEYS``)."""
    purchase_max_tracks: Annotated[int, Field(ge=1, le=1_000)] = 50
    """Most tracks one ``purchaseTracks`` may buy (``BFF_PURCHASE_MAX_TRACKS``)."""
    subscription_queue_size: Annotated[int, Field(ge=1, le=100_000)] = 256
    """Events a subscriber may have waiting before it is disconnected as too slow
    (``BFF_SUBSCRIPTION_QUEUE_SIZE``)."""
    max_subscriptions_per_connection: Annotated[int, Field(ge=1, le=10_000)] = 100
    """Most operations one WebSocket connection may run at once
    (``BFF_MAX_SUBSCRIPTIONS_PER_CONNECTION``)."""
    ws_connection_init_timeout_ms: Milliseconds = 10_000
    """Time a WebSocket client has to send ``connection_init`` (``BFF_WS_CONNECTION_INIT_TIMEOUT_MS``)."""
    ws_keep_alive_interval_ms: Milliseconds = 15_000
    """Interval of keep-alive messages on legacy ``graphql-ws`` connections
    (``BFF_WS_KEEP_ALIVE_INTERVAL_MS``)."""
    sse_subscriptions: bool = True
    """Serve subscriptions over Server-Sent Events too (``BFF_SSE_SUBSCRIPTIONS``)."""

    # Shared state in Redis and several processes (issue 11); see README "Run several instances".
    redis_url: SecretStr | None = None
    """Redis holding the state instances share (``BFF_REDIS_URL``, ``redis://[user:password@]host:port/db``,
    ``rediss://`` or ``unix://``): cache second level, event bus, idempotency keys, webhook queue, rate
    limits and APQ documents. Unset: all of them live in the process. Never shown in logs or errors."""
    redis_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "bff"
    """First part of every Redis key and channel (``BFF_REDIS_PREFIX``), so several deployments can
    share one Redis; letters, digits, ``_``, ``.`` and ``-``."""
    redis_timeout_ms: Milliseconds = 1_000
    """Time allowed to connect to Redis and for one command's answer (``BFF_REDIS_TIMEOUT_MS``); past it
    Redis counts as down for a second (see README "When Redis fails")."""
    redis_max_connections: Annotated[int, Field(ge=4, le=10_000)] = 64
    """Most connections one process opens to Redis for commands (``BFF_REDIS_MAX_CONNECTIONS``); more
    concurrent commands wait up to ``BFF_REDIS_TIMEOUT_MS`` for one. The bus and the webhook worker
    hold one blocking connection each on top."""
    cache_l1_ttl_ms: Annotated[int, Field(ge=0, le=3_600_000)] = 2_000
    """With Redis: longest an entry stays in the in-process first level of the entity cache
    (``BFF_CACHE_L1_TTL_MS``, at most ``BFF_CACHE_MAX_ENTRIES`` entries). Invalidations reach other
    instances' first levels at once over Redis; this bounds how long one missed while Redis was
    unreachable can be served. 0: no first level."""
    idempotency_lease_ms: Annotated[int, Field(ge=100, le=3_600_000)] = 10_000
    """With Redis: how long an idempotency key in progress stays claimed without its holder renewing it
    (``BFF_IDEMPOTENCY_LEASE_MS``; the holder renews every third of it). A holder that dies frees its
    keys after this; a request waiting for the key then runs."""
    event_log_max_len: Annotated[int, Field(ge=100, le=100_000_000)] = 100_000
    """With Redis: about how many recent events the bus's stream keeps (``BFF_EVENT_LOG_MAX_LEN``); an
    instance cut off from Redis catches up on at most these many when it reconnects."""
    webhook_claim_idle_ms: Annotated[int, Field(ge=100, le=3_600_000)] = 10_000
    """With Redis: an accepted webhook taken by a worker that has not published it within this time (its
    process died) is taken over by another instance's worker (``BFF_WEBHOOK_CLAIM_IDLE_MS``)."""
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    """The event loop ``bff serve`` runs on (``BFF_EVENT_LOOP``): ``uvloop`` (faster sockets and
    callbacks; the standard library's loop where uvloop is not installed, as on Windows) or
    ``asyncio``. Workers (``--workers``) each run the same."""
    workers: Annotated[int, Field(ge=1, le=256)] = 1
    """Processes ``bff serve`` runs on one port (``BFF_WORKERS``; ``--workers`` wins). More than 1 needs
    ``BFF_REDIS_URL``, since workers share state only through Redis."""

    @property
    def authentication_configured(self) -> bool:
        """Whether any credential can be checked: a JWT key source or API keys."""
        return bool(self.jwt_hs256_secret or self.jwt_jwks_file or self.jwt_jwks_url or self.api_keys)

    def service(self, name: str) -> ServiceSettings:
        """Return one service's settings; raises ``KeyError`` for a name the app did not declare."""
        return self.services[name]

    @field_validator("cors_allowed_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip().rstrip("/") for part in value.split(",") if part.strip())
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("jwt_hs256_secret")
    @classmethod
    def _hs256_secret_length(cls, value: SecretStr | None) -> SecretStr | None:
        # A short HMAC key can be brute-forced offline from any one token it signed.
        if value is not None and len(value.get_secret_value().encode()) < MIN_HS256_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_HS256_SECRET_BYTES} bytes (RFC 7518 section 3.2)")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("rate_limit", "auth_failure_limit")
    @classmethod
    def _rate_limit_notation(cls, value: str | None) -> str | None:
        if value is not None:
            from limits import parse_many

            parse_many(value)  # ValueError names the problem
        return value


PRODUCTION_DEFAULTS: Mapping[str, Any] = {
    "graphiql": False,
    "introspection": False,
    "field_suggestions": False,
    "auth_required": True,
    "csrf_prevention": True,
    "rate_limit": "20/second;1000/minute",
}
"""What ``BFF_PROFILE=production`` changes, before the environment's own values (README, "Production
profile"): no playground, introspection or suggestions for probers, sign-in required for customer
data, CSRF prevention, and a rate limit per principal or IP."""


class SettingsError(Exception):
    """A setting is malformed or missing; ``str()`` is one line that names the variable."""


def _variable(prefix: str, loc: tuple[int | str, ...]) -> str:
    return prefix + "_".join(str(part) for part in loc).upper()


def _holds_secret(annotation: Any) -> bool:
    """Whether a field's type is or contains ``SecretStr``: its value must not appear in errors."""
    return annotation is SecretStr or any(_holds_secret(arg) for arg in get_args(annotation))


def _first_error(prefix: str, exc: ValidationError, raw: Mapping[str, Any]) -> SettingsError:
    error = exc.errors()[0]
    loc = tuple(error["loc"])
    name = _variable(prefix, loc[:1])
    if error["type"] == "extra_forbidden":
        return SettingsError(f"{name}: unknown setting")
    value = raw.get(str(loc[0])) if loc else None
    field = Settings.model_fields.get(str(loc[0])) if loc else None
    secret = field is not None and _holds_secret(field.annotation)
    shown = "" if value is None or secret else f" (got {value!r})"
    return SettingsError(f"{name}: {error['msg']}{shown}")


def load_settings(
    environ: Mapping[str, str], *, services: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Build :class:`Settings` from an environment mapping (usually ``os.environ``).

    ``services`` maps each service the app declares to its default URL (``App.service_defaults()``);
    ``BFF_SERVICE_<NAME>_<FIELD>`` variables set exactly those names, and a variable naming any other
    service is an error that lists the known ones. ``overrides`` (e.g. ``host``/``port`` from
    command-line flags) win over the environment. Raises :class:`SettingsError` naming the first bad
    variable; unknown ``BFF_*`` variables are errors too, so a typo in a security setting cannot pass
    silently.
    """
    declared = dict(services or {})
    configured: dict[str, ServiceSettings] = {}
    for name, default_url in declared.items():
        prefix = f"{SERVICE_PREFIX}{service_variable(name)}_"
        raw: dict[str, Any] = {
            key[len(prefix) :].lower(): value for key, value in environ.items() if key.startswith(prefix)
        }
        raw.setdefault("url", default_url)
        try:
            configured[name] = ServiceSettings.model_validate(raw)
        except ValidationError as exc:
            raise _first_error(prefix, exc, raw) from None
    known = tuple(f"{SERVICE_PREFIX}{service_variable(n)}_" for n in declared)
    for key in environ:
        if key.startswith(SERVICE_PREFIX) and not key.startswith(known):
            names = ", ".join(declared) or "none"
            raise SettingsError(f"{key}: unknown service (the app declares: {names})")
    top: dict[str, Any] = {
        key[len(PREFIX) :].lower(): value
        for key, value in environ.items()
        if key.startswith(PREFIX) and not key.startswith(SERVICE_PREFIX)
    }
    top.update({key: value for key, value in overrides.items() if value is not None})
    top.setdefault(
        "telemetry_env",
        {
            key: value
            for key, value in environ.items()
            if key.startswith(TELEMETRY_PREFIX) or key in TELEMETRY_VARIABLES
        },
    )
    production = str(top.get("profile", "")).strip().lower() == "production"
    given = {**(PRODUCTION_DEFAULTS if production else {}), **top}
    try:
        settings = Settings.model_validate({**given, "services": configured})
    except ValidationError as exc:
        raise _first_error(PREFIX, exc, top) from None
    if production and not settings.authentication_configured:
        raise SettingsError(
            "BFF_PROFILE: production needs authentication: set BFF_JWT_JWKS_URL, BFF_JWT_JWKS_FILE, "
            "BFF_JWT_HS256_SECRET or BFF_API_KEYS"
        )
    return settings


def service_variable(name: str) -> str:
    """The ``<NAME>`` part of a service's variables: ``mediaCatalog`` -> ``MEDIACATALOG``,
    ``media-catalog`` -> ``MEDIA_CATALOG``."""
    return name.upper().replace("-", "_")
