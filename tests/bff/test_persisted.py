"""The in-process APQ store is bounded in bytes, not in documents."""

from __future__ import annotations

from bff.persisted import MemoryQueryStore, sha256_hex


async def test_apq_store_keeps_at_most_its_bytes() -> None:
    """3,000 documents of 95 KB fit in a 1 MB store as about ten: memory stays bounded by bytes."""
    store = MemoryQueryStore(1_000_000)
    for index in range(3_000):
        document = "{ __typename }" + f" #{index} " + "x" * 95_000
        await store.set(sha256_hex(document), document)
    assert store.size_bytes <= 1_000_000
    last = "{ __typename }" + " #2999 " + "x" * 95_000
    assert await store.get(sha256_hex(last)) == last


async def test_apq_store_refuses_a_document_larger_than_itself() -> None:
    """A document larger than the whole store is not kept (and evicts nothing)."""
    store = MemoryQueryStore(10_000)
    small = "{ small: __typename }"
    await store.set(sha256_hex(small), small)
    await store.set("big", "x" * 20_000)
    assert await store.get("big") is None
    assert await store.get(sha256_hex(small)) == small
