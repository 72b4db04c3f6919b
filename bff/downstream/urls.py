"""Downstream URLs: query strings as ``urllib.parse.urlencode`` writes them, in a fraction of its time.

A batched GET carries up to ``max_batch_size`` keys (``?id=1&id=2...``): ``urlencode`` quotes each
name and value with ``quote_plus`` (a few microseconds each), and httpx, given ``params``, encodes
them again and parses the URL three times. Ids are mostly plain ASCII letters and digits, which
``quote_plus`` leaves as they are; only the others are quoted here. The client then hands httpx one
absolute URL, which it parses once. Pairs keep their order (httpx grouped them by name, which no
server reads differently).
"""

from __future__ import annotations

from urllib.parse import quote_plus

from bff.downstream.response import Params

__all__ = ["absolute_url", "query_string"]


def _quoted(text: str) -> str:
    return text if text.isalnum() and text.isascii() else quote_plus(text)


def query_string(params: Params) -> str:
    """``params`` as a query string (without ``?``), equal to ``urlencode(list(params))``."""
    return "&".join(f"{_quoted(name)}={_quoted(value)}" for name, value in params)


def absolute_url(base_url: str, path: str, params: Params) -> str:
    """The URL of ``path`` (relative to ``base_url``, which has no trailing ``/``) with ``params``
    appended to any query ``path`` has, as httpx joins a relative URL to a client's ``base_url``."""
    url = f"{base_url}/{path.lstrip('/')}"
    if not params:
        return url
    return f"{url}{'&' if '?' in url else '?'}{query_string(params)}"
