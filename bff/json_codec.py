"""JSON on the request path: orjson where it can, the standard library where orjson refuses.

orjson decodes and encodes several times faster than :mod:`json`, but it refuses some inputs the
standard library takes: integers beyond 64 bits (which it would even read as floats), ``NaN`` and
``Infinity`` literals, lone surrogates (``"\\ud800"``), nesting deeper than 1,024 levels, byte
order marks, non-string keys. Each function here tries orjson first and hands whatever it refuses
to :mod:`json`, so what parses, and what is refused, stays exactly what it was.

One difference remains, on purpose: a float ``NaN`` or infinity (never in GraphQL data, whose
``Float`` refuses them) encodes as ``null``, valid JSON, where :mod:`json` wrote the invalid ``NaN``.
"""

from __future__ import annotations

import json
from typing import Any, Final

import orjson

__all__ = ["dumps", "dumps_text", "loads"]

_OPTIONS: Final = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
"""Datetimes and dataclasses go to ``default`` (``str``) as :mod:`json` sends them, not orjson's way."""
_DIGITS_TO_ZERO: Final = bytes.maketrans(b"123456789", b"000000000")
_TEXT_DIGITS_TO_ZERO: Final = str.maketrans("123456789", "000000000")
_LONG_NUMBER: Final = "0" * 19
_LONG_NUMBER_BYTES: Final = b"0" * 19
"""Nineteen digits in a row (every digit made ``0``): maybe an integer outside orjson's range
(below -2**63, which has 19 digits, or above 2**64 - 1), which orjson would read as a float.
Translating and searching costs a fifth of a regular expression's scan."""


def loads(data: bytes | str) -> Any:
    """The JSON value of ``data`` (bytes in UTF-8, -16 or -32, or text), as ``json.loads(data)``.

    Raises ``ValueError`` for what is not JSON (``UnicodeDecodeError``, one, for bytes in no UTF)
    and ``RecursionError`` for nesting too deep for :mod:`json`.
    """
    if isinstance(data, bytes):
        long_number = _LONG_NUMBER_BYTES in data.translate(_DIGITS_TO_ZERO)
    else:
        long_number = _LONG_NUMBER in data.translate(_TEXT_DIGITS_TO_ZERO)
    if not long_number:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON; objects JSON cannot hold are written as ``str(value)``.

    Raises ``UnicodeEncodeError`` for a string holding a lone surrogate, as ``json.dumps(...).encode()``.
    """
    try:
        return orjson.dumps(value, default=str, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def dumps_text(value: Any) -> str:
    """:func:`dumps` as text (for APIs that want ``str``, such as Strawberry's ``encode_json``)."""
    return dumps(value).decode("utf-8")
