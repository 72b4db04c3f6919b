"""bff.downstream.urls: the query strings and URLs httpx would have built from ``params``."""

from __future__ import annotations

import functools
from urllib.parse import urlencode

import httpx
from hypothesis import given
from hypothesis import strategies as st

from bff.downstream.urls import absolute_url, query_string

PAIRS = st.lists(st.tuples(st.text(max_size=8), st.text(max_size=12)), max_size=6)


@given(PAIRS)
def test_query_string_is_urlencode(pairs: list[tuple[str, str]]) -> None:
    """Any names and values, unicode, spaces and reserved characters included, encode as urlencode does."""
    assert query_string(pairs) == urlencode(pairs)


@functools.cache
def _client(base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base)


@given(
    st.sampled_from(["http://127.0.0.1:8002", "http://svc.internal:9000/api/v1"]),
    st.sampled_from(["/tracks", "tracks", "/tracks/42", "/invoice-lines"]),
    PAIRS,
)
def test_absolute_url_is_the_url_httpx_builds_from_params(
    base: str, path: str, pairs: list[tuple[str, str]]
) -> None:
    """The URL is the one an httpx client with ``base_url`` builds from ``path`` and ``params``: the
    same path and values, each name's in order (httpx also groups the pairs by name)."""
    expected = _client(base).build_request("GET", path, params=pairs or None).url
    got = httpx.URL(absolute_url(base, path, pairs))
    assert got.copy_with(query=None) == expected.copy_with(query=None)
    assert sorted(got.params.keys()) == sorted(expected.params.keys())
    for name in expected.params:
        assert got.params.get_list(name) == expected.params.get_list(name)


def test_params_join_a_query_the_path_already_has() -> None:
    """A path with its own query gets the parameters after an ``&``."""
    assert absolute_url("http://h", "/tracks?_limit=5", [("id", "1")]) == "http://h/tracks?_limit=5&id=1"
