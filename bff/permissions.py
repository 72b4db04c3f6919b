"""Permission helpers for apps: who is calling, and refusing with the right ``extensions.code``.

What a principal may see is the app's rule (Chinook's is ``resolvers/access.py``); the kit gives the
principal (:class:`~bff.auth.Principal`, with its claims) and these checks.
"""

from __future__ import annotations

from bff.auth import Principal
from bff.context import Context
from bff.errors import Unauthenticated

__all__ = ["principal_or_none", "require_principal"]


def principal_or_none(context: Context) -> Principal | None:
    """The operation's principal; ``None`` while anonymous and ``BFF_AUTH_REQUIRED`` is off.

    Raises ``UNAUTHENTICATED`` for an anonymous operation when it is on.
    """
    if context.principal is None and context.settings.auth_required:
        raise Unauthenticated("Sign in first.")
    return context.principal


def require_principal(context: Context) -> None:
    """Raise ``UNAUTHENTICATED`` for an anonymous operation while ``BFF_AUTH_REQUIRED`` is on."""
    if context.principal is None and context.settings.auth_required:
        raise Unauthenticated("Sign in to make changes.")
