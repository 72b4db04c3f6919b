"""The JavaScript and lodash value semantics that json-server's answers depend on.

json-server compares a query value with ``String(value)``, orders with lodash's ``orderBy``, parses
numbers with ``parseInt`` and reads fields with ``_.get``. The demo services must give the same answers
for the same data, so these functions reproduce those rules for decoded JSON values (``None``,
``bool``, ``int``, ``float``, ``str``, ``list``, ``dict``).
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

__all__ = [
    "DECIMAL",
    "Sortable",
    "compare",
    "js_compare",
    "js_copy",
    "js_number",
    "js_string",
    "parse_int",
    "path_get",
    "plural",
    "singular",
    "sortable",
    "strict_equal",
    "truthy",
]

DECIMAL: Final = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
"""A decimal number literal, as ``Number()`` and ``parseFloat()`` accept it."""


def js_copy(value: Any) -> Any:
    """Deep-copy decoded JSON, turning integral floats into ints since JavaScript has one number type."""
    if isinstance(value, dict):
        return {key: js_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [js_copy(item) for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value


def js_string(value: Any) -> str:
    """Return JavaScript's ``String(value)``: ``1.0`` is ``"1"``, ``[1, 2]`` is ``"1,2"``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number_string(value)
    if isinstance(value, list):
        return ",".join("" if item is None else js_string(item) for item in value)
    if value is None:
        return "null"
    return "[object Object]"


def _number_string(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    mantissa, _, exponent = text.partition("e")
    if not exponent:
        return text
    power = int(exponent)
    if -7 < power < 0:  # JavaScript keeps positional notation down to 1e-6, Python only to 1e-4
        sign, digits = ("-", mantissa[1:]) if mantissa.startswith("-") else ("", mantissa)
        return f"{sign}0.{'0' * (-power - 1)}{digits.replace('.', '')}"
    return f"{mantissa}e{'+' if power > 0 else '-'}{abs(power)}"


def js_number(text: str) -> float:
    """Return JavaScript's ``Number(text)``: ``""`` is 0, ``"0x1f"`` is 31, anything else NaN."""
    text = text.strip()
    if not text:
        return 0.0
    if DECIMAL.fullmatch(text):
        return float(text)
    if text in ("Infinity", "+Infinity", "-Infinity"):
        return -math.inf if text.startswith("-") else math.inf
    for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
        if text[:2].lower() == prefix:
            try:
                return float(int(text[2:], base))
            except ValueError:
                return math.nan
    return math.nan


def parse_int(text: str | None) -> int | None:
    """Return JavaScript's ``parseInt(text, 10)`` (``"12abc"`` is 12), None for NaN."""
    match = re.match(r"\s*([+-]?\d+)", text or "")
    return int(match.group(1)) if match else None


def truthy(value: Any) -> bool:
    """Return whether JavaScript treats the value as true (``0``, ``""``, ``null``, ``false`` are not)."""
    if isinstance(value, float) and math.isnan(value):
        return False
    return value is not None and value is not False and value != 0 and value != ""


def strict_equal(left: Any, right: Any) -> bool:
    """Return JavaScript's ``left === right`` (objects and arrays are never equal here)."""
    if left is None or right is None or isinstance(left, bool) or isinstance(right, bool):
        return left is right and left is not None
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    return isinstance(left, str) and isinstance(right, str) and left == right


def path_get(record: Any, path: str) -> tuple[bool, Any]:
    """Return lodash's ``_.has`` and ``_.get`` of a path (``"a.b"``, ``"a[0]"``) as (found, value)."""
    if isinstance(record, dict) and path in record:
        return True, record[path]
    if "." not in path and "[" not in path:
        return False, None
    value = record
    for part in re.findall(r"[^.[\]]+", path):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def singular(word: str) -> str:
    """Stand in for ``pluralize.singular`` on regular English plurals: ``"mediaTypes"`` -> ``"mediaType"``."""
    if word.endswith("ies") and len(word) > 3:
        return word[:-3] + "y"
    if re.search(r"(ss|x|z|ch|sh)es$", word):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def plural(word: str) -> str:
    """Stand in for ``pluralize`` on regular English nouns: ``"album"`` -> ``"albums"``."""
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    if re.search(r"(s|x|z|ch|sh)$", word):
        return word + "es"
    return word + "s"


Sortable = tuple[int, float, bytes | None]
"""A value prepared for ordering: (rank: 0 value, 1 null, 2 missing; ``Number(value)``; UTF-16 text or
None for numbers)."""


def sortable(found: bool, value: Any) -> Sortable:
    """Prepare a ``path_get`` result for ``compare``."""
    if not found:
        return (2, 0.0, None)
    if value is None:
        return (1, 0.0, None)
    if isinstance(value, bool | int | float):
        return (0, float(value), None)
    text = js_string(value)
    # Big-endian UTF-16 bytes sort the way JavaScript compares strings: by UTF-16 code unit.
    return (0, js_number(text), text.encode("utf-16-be", "surrogatepass"))


def compare(left: Sortable, right: Sortable) -> int:
    """Return -1, 0 or 1 like lodash's ``compareAscending``: values first, then null, then missing.

    Two strings compare as strings; otherwise both compare as numbers and NaN is equal to everything,
    as with JavaScript's ``<`` and ``>``.
    """
    if left[0] or right[0]:
        return (left[0] > right[0]) - (left[0] < right[0])
    if left[2] is not None and right[2] is not None:
        return (left[2] > right[2]) - (left[2] < right[2])
    return (left[1] > right[1]) - (left[1] < right[1])


def js_compare(text: str, value: Any) -> int | None:
    """Return the sign of ``text - value`` as JavaScript's ``<``/``>`` see it, None when NaN is involved."""
    left, right = sortable(True, text), sortable(True, value)
    if right[2] is None and (math.isnan(left[1]) or math.isnan(right[1])):
        return None
    return compare(left, right)
