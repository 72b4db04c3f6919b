"""CSRF prevention for simple requests, as Apollo Server does it (``BFF_CSRF_PREVENTION``).

A browser sends a cross-site request without a CORS preflight only when it is "simple": GET or
POST with no ``Content-Type`` or one of ``text/plain``, ``application/x-www-form-urlencoded`` and
``multipart/form-data``, and no custom headers. Such a request can still run an operation with the
user's cookies, even though the page cannot read the answer. With the check on, a request passes
only with a non-simple ``Content-Type`` (``application/json``) or a non-empty
``apollo-require-preflight`` or ``x-apollo-operation-name`` header, which forces a preflight that
CORS (``BFF_CORS_ALLOWED_ORIGINS``) then decides on.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["CSRF_PREVENTED", "PREFLIGHT_HEADERS", "SIMPLE_CONTENT_TYPES", "is_csrf_safe"]

CSRF_PREVENTED = "CSRF_PREVENTED"
SIMPLE_CONTENT_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
PREFLIGHT_HEADERS = ("apollo-require-preflight", "x-apollo-operation-name")


def is_csrf_safe(headers: Mapping[str, str]) -> bool:
    """True when a browser could not have sent the request cross-site without a preflight."""
    if any(headers.get(name, "").strip() for name in PREFLIGHT_HEADERS):
        return True
    content_type = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    return bool(content_type) and content_type not in SIMPLE_CONTENT_TYPES
