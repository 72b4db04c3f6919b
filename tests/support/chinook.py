"""The Chinook app and its settings, for tests of the kit that need an app to serve."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bff.settings import Settings, load_settings
from bff_chinook.schema import app as chinook_app

__all__ = ["chinook_app", "chinook_settings"]


def chinook_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """:func:`bff.settings.load_settings` for the Chinook app's services."""
    return load_settings(environ or {}, services=chinook_app.service_defaults(), **overrides)


def customer_record(**overrides: Any) -> dict[str, Any]:
    """A whole ``customers`` record as the demo services hold it (every declared field), changed by
    ``overrides``: what a stand-in customers service answers."""
    from bff_chinook.demo.chinook import load_chinook

    return {**load_chinook()["customers"][0], **overrides}
