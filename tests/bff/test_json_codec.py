"""bff.json_codec: orjson's speed, with exactly what the standard library parses and writes."""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bff import json_codec

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@given(JSON_VALUES)
def test_round_trips_as_the_standard_library(value: Any) -> None:
    """Any JSON value, big integers and any text included, encodes to what json reads back equal,
    and decodes (from bytes and text) as json decodes it."""
    encoded = json_codec.dumps(value)
    assert json.loads(encoded) == value
    standard = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert json_codec.loads(standard) == value
    assert json_codec.loads(json.dumps(value).encode()) == json.loads(json.dumps(value).encode())


@pytest.mark.parametrize(
    "text",
    [
        '{"id": 123456789012345678901234567890}',  # orjson alone would make it a float
        '{"id": -9223372036854775809}',  # below -2**63 with 19 digits: a float for orjson too
        '{"id": -9999999999999999999}',
        '{"a": NaN, "b": Infinity, "c": -Infinity}',
        '{"a": 1e400}',
        '{"a": "\\ud800"}',  # a lone surrogate
    ],
)
def test_decodes_what_orjson_refuses_as_json_does(text: str) -> None:
    """Input orjson refuses or reads differently is decoded by the standard library, the same value."""
    expected = json.loads(text)
    for data in (text, text.encode("utf-8")):
        decoded = json_codec.loads(data)
        assert json.dumps(decoded) == json.dumps(expected)
        assert type(decoded) is type(expected)


def test_nesting_deeper_than_orjson_takes_goes_as_json_goes() -> None:
    """Deeper than orjson's 1,024 levels, the outcome is the standard library's, value or error."""
    text = "[" * 1030 + "]" * 1030
    try:
        expected: object = json.loads(text)
    except RecursionError as exc:
        expected = type(exc)
    try:
        got: object = json_codec.loads(text)
    except RecursionError as exc:
        got = type(exc)
    assert got == expected


def test_decodes_other_encodings_as_json_does() -> None:
    """Bytes in UTF-16, or UTF-8 after a byte order mark, decode, as json.loads detects them."""
    assert json_codec.loads('{"a": "é"}'.encode("utf-16")) == {"a": "é"}
    assert json_codec.loads('{"a": "é"}'.encode("utf-8-sig")) == {"a": "é"}


@pytest.mark.parametrize("data", [b"", b"{", b"\xff{}", "\ufeff{}", "nope"])
def test_refuses_what_json_refuses(data: bytes | str) -> None:
    """Not JSON (or not in a UTF) raises ValueError, as json.loads does."""
    for decode in (json.loads, json_codec.loads):
        with pytest.raises(ValueError):  # noqa: PT011 - json's own contract: any ValueError
            decode(data)


def test_encodes_as_the_response_encoder_did() -> None:
    """Unicode stays UTF-8, keys of any type become strings, integers of any size stay exact, and
    datetimes and dataclasses go through ``str`` as the earlier ``json.dumps(default=str)`` did."""

    @dataclasses.dataclass
    class Point:
        x: int

    value = {
        "text": "é\u2028😀",
        1: 2**70,
        "when": datetime.datetime(2026, 11, 30, 5, 0, tzinfo=datetime.UTC),
        "point": Point(1),
        "float": 1e16,
    }
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
    assert json_codec.dumps(value) == expected
    assert json_codec.dumps_text(value) == expected.decode("utf-8")


def test_nan_encodes_as_null() -> None:
    """A float NaN, which JSON cannot hold, encodes as null (json wrote the invalid NaN)."""
    assert json_codec.dumps({"x": float("nan"), "y": float("inf")}) == b'{"x":null,"y":null}'


def test_a_lone_surrogate_cannot_be_encoded() -> None:
    """A string with a lone surrogate is not UTF-8: UnicodeEncodeError, as before."""
    with pytest.raises(UnicodeEncodeError):
        json_codec.dumps({"a": "\ud800"})
