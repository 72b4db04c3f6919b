"""Persisted queries: Apollo's automatic persisted queries (APQ) and a safelist of documents.

APQ (``BFF_APQ``, on by default): a request's ``extensions.persistedQuery`` is
``{"version": 1, "sha256Hash": "<hex>"}``. Sent without ``query``, the stored document with that
hash runs, or the request fails with ``PERSISTED_QUERY_NOT_FOUND``; the client then sends the hash
with the query, whose SHA-256 must match (``PERSISTED_QUERY_HASH_MISMATCH``), and the document is
stored once it ran without a request error. The store holds ``BFF_APQ_CACHE_BYTES`` of documents (least
recently used go first) behind :class:`QueryStore`; with ``BFF_REDIS_URL`` it is shared by every
instance (:class:`bff.redis.queries.RedisQueryStore`, at most ``BFF_APQ_CACHE_SIZE`` documents).

Safelist (``BFF_PERSISTED_QUERIES_MANIFEST``): only the manifest's documents run, by hash or by
full text; anything else fails with ``PERSISTED_QUERY_NOT_IN_LIST`` and nothing is registered. The
manifest is Apollo's ``persisted-query-manifest.json`` (``{"format": "apollo-persisted-query-manifest",
"version": 1, "operations": [{"id": ..., "body": ...}, ...]}``) or a plain ``{"<sha256>": "<document>"}``
object.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cachetools import LRUCache

from bff.settings import Settings, SettingsError

__all__ = [
    "PERSISTED_QUERY_HASH_MISMATCH",
    "PERSISTED_QUERY_NOT_FOUND",
    "PERSISTED_QUERY_NOT_IN_LIST",
    "PERSISTED_QUERY_NOT_SUPPORTED",
    "MemoryQueryStore",
    "PersistedQueries",
    "PersistedQueryError",
    "QueryStore",
    "Resolved",
    "load_manifest",
    "sha256_hex",
]

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
PERSISTED_QUERY_NOT_IN_LIST = "PERSISTED_QUERY_NOT_IN_LIST"
PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
BAD_REQUEST = "BAD_REQUEST"

_HEX64 = re.compile(r"[0-9a-f]{64}")


def sha256_hex(document: str) -> str:
    """The SHA-256 hex digest of a document's UTF-8 text (what APQ clients send)."""
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


class PersistedQueryError(Exception):
    """A persisted query request that cannot run; ``code`` goes to ``extensions.code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class QueryStore(Protocol):
    """Where APQ documents live, by hash."""

    async def get(self, sha256: str) -> str | None:
        """The document with this hash, or ``None``."""

    async def set(self, sha256: str, document: str) -> None:
        """Keep ``document`` under its hash."""


class MemoryQueryStore:
    """An in-process LRU :class:`QueryStore` holding at most ``max_bytes`` of documents (UTF-8 text
    and hash); a document larger than that is not kept."""

    def __init__(self, max_bytes: int) -> None:
        self._documents: LRUCache[str, str] = LRUCache(maxsize=max_bytes, getsizeof=_document_bytes)

    async def get(self, sha256: str) -> str | None:
        """The document with this hash, or ``None``."""
        return self._documents.get(sha256)

    async def set(self, sha256: str, document: str) -> None:
        """Keep ``document`` under its hash."""
        if _document_bytes(document) <= self._documents.maxsize:
            self._documents[sha256] = document

    @property
    def size_bytes(self) -> int:
        """What the documents weigh now, in bytes."""
        return int(self._documents.currsize)


def _document_bytes(document: str) -> int:
    # The hash key and the entry's own overhead weigh about as much as a short document.
    return len(document.encode("utf-8", "surrogatepass")) + 128


def load_manifest(path: Path) -> dict[str, str]:
    """Hash -> document from a manifest file; raises ``SettingsError`` naming the problem."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"BFF_PERSISTED_QUERIES_MANIFEST: cannot read {path}: {exc}") from None
    documents: dict[str, str] = {}
    if isinstance(data, dict) and isinstance(data.get("operations"), list):
        for operation in data["operations"]:
            body = operation.get("body") if isinstance(operation, dict) else None
            if not isinstance(body, str):
                raise SettingsError(f"BFF_PERSISTED_QUERIES_MANIFEST: an operation in {path} has no body")
            documents[sha256_hex(body)] = body
            if isinstance(operation.get("id"), str):
                documents[operation["id"]] = body
    elif isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
        for key, body in data.items():
            if key != sha256_hex(body):
                raise SettingsError(
                    f"BFF_PERSISTED_QUERIES_MANIFEST: {key} in {path} is not the SHA-256 of its document"
                )
            documents[key] = body
    else:
        raise SettingsError(f"BFF_PERSISTED_QUERIES_MANIFEST: {path} is not a persisted query manifest")
    return documents


@dataclass(frozen=True, slots=True)
class Resolved:
    """The document a request runs, and the hash to register it under once it ran (APQ)."""

    query: str | None
    register: str | None = None
    safelisted: bool = False
    """Whether the document is one of the safelist's (``BFF_PERSISTED_QUERIES_MANIFEST``): a bounded
    set, so its operation name may label metrics."""


class PersistedQueries:
    """Resolves a request's document from its ``query`` and ``extensions.persistedQuery``."""

    def __init__(self, *, apq: bool, store: QueryStore, safelist: dict[str, str] | None = None) -> None:
        self.apq = apq
        self.store = store
        self.safelist = safelist
        self._safelisted_texts = frozenset(safelist.values()) if safelist is not None else frozenset()

    @classmethod
    def from_settings(cls, settings: Settings, *, store: QueryStore | None = None) -> PersistedQueries:
        """APQ (over ``store``, by default in the process) and safelist as configured; raises
        ``SettingsError`` for a bad manifest."""
        manifest = settings.persisted_queries_manifest
        return cls(
            apq=settings.apq,
            store=store if store is not None else MemoryQueryStore(settings.apq_cache_bytes),
            safelist=load_manifest(manifest) if manifest is not None else None,
        )

    async def resolve(self, query: str | None, extensions: dict[str, Any] | None) -> Resolved:
        """The document to run; raises :class:`PersistedQueryError`."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            if self.safelist is not None and query is not None and query not in self._safelisted_texts:
                raise PersistedQueryError(
                    PERSISTED_QUERY_NOT_IN_LIST, "Only pre-registered operations may run on this endpoint."
                )
            return Resolved(query, safelisted=self.safelist is not None)
        sha256 = self._hash_of(persisted)
        if self.safelist is not None:
            document = self.safelist.get(sha256)
            if document is None or (query is not None and query != document):
                raise PersistedQueryError(
                    PERSISTED_QUERY_NOT_IN_LIST, "Only pre-registered operations may run on this endpoint."
                )
            return Resolved(document, safelisted=True)
        if not self.apq:
            raise PersistedQueryError(PERSISTED_QUERY_NOT_SUPPORTED, "PersistedQueryNotSupported")
        if query is None:
            document = await self.store.get(sha256)
            if document is None:
                raise PersistedQueryError(PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")
            return Resolved(document)
        if sha256_hex(query) != sha256:
            raise PersistedQueryError(
                PERSISTED_QUERY_HASH_MISMATCH, "The sha256Hash does not match the query."
            )
        return Resolved(query, register=sha256)

    async def register(self, resolved: Resolved) -> None:
        """Store a document that ran (APQ); nothing for other requests."""
        if resolved.register is not None and resolved.query is not None:
            await self.store.set(resolved.register, resolved.query)

    @staticmethod
    def _hash_of(persisted: Any) -> str:
        if not isinstance(persisted, dict):
            raise PersistedQueryError(BAD_REQUEST, "extensions.persistedQuery must be an object.")
        if persisted.get("version") != 1:
            raise PersistedQueryError(
                PERSISTED_QUERY_NOT_SUPPORTED, "Only version 1 of persisted queries is supported."
            )
        sha256 = persisted.get("sha256Hash")
        if not isinstance(sha256, str) or not _HEX64.fullmatch(sha256.lower()):
            raise PersistedQueryError(
                BAD_REQUEST, "extensions.persistedQuery.sha256Hash must be 64 hex digits."
            )
        return sha256.lower()
