"""``App``: what an app declares for the kit to serve, and how ``--app MODULE:ATTR`` finds it.

The kit (``bff``) knows GraphQL, HTTP, WebSockets, REST services, caching, resilience, policies and
events; an app knows its domain. An app is one :class:`App` object::

    app = bff.App(
        name="blog",
        query=Query,
        services={"jsonplaceholder": bff.Service(default_url="http://127.0.0.1:3000")},
    )

and is served with ``bff serve --app blog.graph:app`` (or ``BFF_APP=blog.graph:app``). Nothing in
``bff`` imports an app: :func:`load_app` imports the module the command line names.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from bff.cost_map import FieldCost
    from bff.webhooks import WebhookEndpoint

__all__ = ["App", "AppLoadError", "DemoServices", "Service", "WebhookSender", "load_app"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """A downstream REST service the app calls, by the name the app gives it.

    ``default_url`` is where it is when ``BFF_SERVICE_<NAME>_URL`` is not set (``http://host:port``).
    """

    default_url: str
    description: str = ""


class DemoServices(Protocol):
    """Running demo services: their base URLs by service name (``http://127.0.0.1:PORT``)."""

    urls: Mapping[str, str]


@runtime_checkable
class WebhookSender(Protocol):
    """Demo services that send webhooks: ``bff demo`` tells them where the BFF is."""

    def point_webhooks(self, bff_base_url: str, secret: str) -> None:
        """Send the demo's webhooks to the BFF at ``bff_base_url``, signed with ``secret``."""


DemoFactory = Callable[[str, bool], AbstractAsyncContextManager[DemoServices]]
"""``demo(host, free_ports)``: start the app's demo services on ``host`` (their usual ports, or free
ones when ``free_ports``); the context manager stops them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class App:
    """One app for the kit to serve.

    - ``query``, ``mutation``, ``subscription``: the Strawberry root types.
    - ``services``: the downstream services by name; ``BFF_SERVICE_<NAME>_*`` configures exactly these.
    - ``cost_map``: per type and field, the cost of fields the declarations do not price
      (:mod:`bff.cost_map`); relationship fields priced by their resource need no entry.
    - ``webhooks``: signed webhook endpoints, each with the app's handler (:mod:`bff.webhooks`).
    - ``demo``: how ``bff demo`` starts demo services for the app; ``None`` when it has none.
    - ``types``: extra Strawberry types the schema must contain though no field names them.
    """

    name: str
    query: type
    services: Mapping[str, Service]
    mutation: type | None = None
    subscription: type | None = None
    cost_map: Mapping[str, Mapping[str, FieldCost]] = field(default_factory=dict)
    webhooks: Sequence[WebhookEndpoint] = ()
    demo: DemoFactory | None = None
    types: Sequence[type] = ()

    def service_defaults(self) -> dict[str, str]:
        """Each declared service's default URL, by name: what :func:`bff.settings.load_settings` takes."""
        return {name: service.default_url for name, service in self.services.items()}


class AppLoadError(Exception):
    """``MODULE:ATTR`` does not name an :class:`App`; ``str()`` says why in one line."""


def load_app(reference: str, *, app_dir: Path | None = None) -> App:
    """Import the :class:`App` that ``reference`` (``package.module:attribute``) names.

    ``app_dir`` (default: the working directory) is put first on ``sys.path``, as uvicorn's
    ``--app-dir`` does, so an app in the current checkout (``examples.jsonplaceholder:app``) is found
    without installing it. Raises :class:`AppLoadError` when the module cannot be imported (or raises
    while it is imported), lacks the attribute, or the attribute is not an :class:`App`.
    """
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise AppLoadError(f"{reference!r} is not MODULE:ATTRIBUTE (e.g. examples.jsonplaceholder:app)")
    directory = str((app_dir or Path.cwd()).resolve())
    if directory not in sys.path:
        sys.path.insert(0, directory)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AppLoadError(f"cannot import {module_name!r}: {exc}") from None
    except Exception as exc:  # the app's own code failed while importing: still one line, not a traceback
        where = _innermost_frame(exc)
        raise AppLoadError(f"importing {module_name!r} failed{where}: {type(exc).__name__}: {exc}") from None
    if not hasattr(module, attribute):
        raise AppLoadError(f"module {module_name!r} has no attribute {attribute!r}")
    found: Any = getattr(module, attribute)
    if not isinstance(found, App):
        raise AppLoadError(f"{reference!r} is not a bff.App (got {type(found).__name__})")
    return found


def _innermost_frame(exc: BaseException) -> str:
    """`` at FILE:LINE`` of the innermost frame of ``exc``'s traceback (or ``""`` without one)."""
    frame = exc.__traceback__
    if frame is None:
        return ""
    while frame.tb_next is not None:
        frame = frame.tb_next
    return f" at {frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}"
