"""Settings: one frozen object built once from the environment.

Every variable starts with ``BFF_``. Per-service settings use ``BFF_SERVICE_<NAME>_<FIELD>``, e.g.
``BFF_SERVICE_CATALOG_URL`` or ``BFF_SERVICE_SALES_READ_TIMEOUT_MS``. Nothing else in the code base
reads ``os.environ``: :func:`load_settings` is called once by the CLI (or by tests with a mapping).

Durations are integers in milliseconds (``*_MS``); sizes are in bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationError

SERVICE_NAMES: tuple[str, ...] = ("customers", "catalog", "sales", "playlists")
"""The downstream services the schema resolves through (see DESIGN.md)."""

DEFAULT_SERVICE_PORTS: dict[str, int] = {"customers": 8001, "catalog": 8002, "sales": 8003, "playlists": 8004}
"""Where ``bff demo`` runs each demo service; the default service URLs point there."""

PREFIX = "BFF_"
SERVICE_PREFIX = "BFF_SERVICE_"

Milliseconds = Annotated[int, Field(gt=0, le=3_600_000)]


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

    @property
    def base_url(self) -> str:
        """The URL as a string without a trailing slash."""
        return str(self.url).rstrip("/")


class Settings(BaseModel):
    """Everything the BFF is configured with. Build it with :func:`load_settings`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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
    """Python logging level name (``BFF_LOG_LEVEL``)."""
    services: dict[str, ServiceSettings]
    """Per-service settings, keyed by the names in :data:`SERVICE_NAMES`."""

    def service(self, name: str) -> ServiceSettings:
        """Return one service's settings; raises ``KeyError`` for an unknown name."""
        return self.services[name]


class SettingsError(Exception):
    """A setting is malformed or missing; ``str()`` is one line that names the variable."""


def _variable(prefix: str, loc: tuple[int | str, ...]) -> str:
    return prefix + "_".join(str(part) for part in loc).upper()


def _first_error(prefix: str, exc: ValidationError, raw: Mapping[str, Any]) -> SettingsError:
    error = exc.errors()[0]
    loc = tuple(error["loc"])
    name = _variable(prefix, loc[:1])
    if error["type"] == "extra_forbidden":
        return SettingsError(f"{name}: unknown setting")
    value = raw.get(str(loc[0])) if loc else None
    shown = "" if value is None else f" (got {value!r})"
    return SettingsError(f"{name}: {error['msg']}{shown}")


def load_settings(environ: Mapping[str, str], **overrides: Any) -> Settings:
    """Build :class:`Settings` from an environment mapping (usually ``os.environ``).

    ``overrides`` (e.g. ``host``/``port`` from command-line flags) win over the environment.
    Raises :class:`SettingsError` naming the first bad variable.
    """
    services: dict[str, ServiceSettings] = {}
    for name in SERVICE_NAMES:
        prefix = f"{SERVICE_PREFIX}{name.upper()}_"
        raw: dict[str, Any] = {
            key[len(prefix) :].lower(): value for key, value in environ.items() if key.startswith(prefix)
        }
        raw.setdefault("url", f"http://127.0.0.1:{DEFAULT_SERVICE_PORTS[name]}")
        try:
            services[name] = ServiceSettings.model_validate(raw)
        except ValidationError as exc:
            raise _first_error(prefix, exc, raw) from None
    known_services = tuple(f"{SERVICE_PREFIX}{n.upper()}_" for n in SERVICE_NAMES)
    for key in environ:
        if key.startswith(SERVICE_PREFIX) and not key.startswith(known_services):
            raise SettingsError(f"{key}: unknown service (known: {', '.join(SERVICE_NAMES)})")
    top: dict[str, Any] = {
        key[len(PREFIX) :].lower(): value
        for key, value in environ.items()
        if key.startswith(PREFIX) and not key.startswith(SERVICE_PREFIX)
    }
    top.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return Settings.model_validate({**top, "services": services})
    except ValidationError as exc:
        raise _first_error(PREFIX, exc, top) from None
