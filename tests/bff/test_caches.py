"""Document caches are bounded in bytes: a client choosing every text cannot grow them past that."""

from __future__ import annotations

from bff.operation.caches import TextCache


def test_text_cache_keeps_at_most_its_bytes_and_counts_hits() -> None:
    """Entries weigh their text times the weight; past the budget the least recently used go first."""
    cache: TextCache[int] = TextCache(100_000, weight=30)
    made: list[str] = []
    for index in range(50):
        text = f"{{ a{index} }}" + " " * 1_000
        cache.get_or_make(text, lambda t: made.append(t) or len(t))
    assert cache.size_bytes <= 100_000
    last = "{ a49 }" + " " * 1_000
    assert cache.get_or_make(last, lambda t: -1) == len(last)
    assert (cache.hits, cache.misses) == (1, 50)


def test_text_cache_keeps_no_text_larger_than_itself() -> None:
    """A text heavier than the whole budget is computed every time and evicts nothing."""
    cache: TextCache[str] = TextCache(1_000, weight=30)
    cache.get_or_make("small", str.upper)
    assert cache.get_or_make("x" * 100, str.upper) == "X" * 100
    assert cache.get_or_make("small", lambda t: "made again") == "SMALL"
