"""Authentication: the :class:`Principal` of a request, from a bearer JWT or an API key.

- ``Authorization: Bearer <JWT>``: HS256 tokens are checked with ``BFF_JWT_HS256_SECRET``, RS256
  tokens with the public key named by their ``kid`` in ``BFF_JWT_JWKS_FILE`` or ``BFF_JWT_JWKS_URL``.
  The algorithm picks the key source, and each source verifies only its own algorithm, so
  ``alg: none`` and algorithm confusion (an HS256 token "signed" with the RSA public key) fail.
  ``exp`` and ``sub`` are required; ``exp``, ``nbf``, ``iss`` (``BFF_JWT_ISSUER``) and ``aud``
  (``BFF_JWT_AUDIENCE``) are checked with ``BFF_JWT_LEEWAY_MS`` of clock skew. The token's claims
  become the principal's :attr:`Principal.claims`; what they mean (roles, tenants) is the app's rule.
- ``X-Api-Key: <key>``: the key's SHA-256 hex digest must be in ``BFF_API_KEYS``, which maps it to
  ``<role>:<subject>``, e.g. ``employee:andrew`` (claims ``{"sub": "andrew", "role": "employee"}``).

No credentials: the principal is ``None`` (anonymous). Bad credentials: HTTP 401 with
``UNAUTHENTICATED`` and ``WWW-Authenticate: Bearer``, before any field runs. Failures are counted per
client IP (``BFF_AUTH_FAILURE_LIMIT``, default ``10/minute``): past the limit, requests with credentials
from that IP get HTTP 429 with ``RATE_LIMITED`` and ``Retry-After`` (seconds), unchecked, so keys and
tokens cannot be guessed at the speed of the network.

WebSockets may also send the same two credentials in their ``connection_init`` payload
(:func:`connection_init_credentials`); :meth:`bff.view.GraphQLView.on_ws_connect` checks them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import httpx
import jwt
from aiohttp import web

from bff.http_protocol import APPLICATION_JSON, RequestRefused, error_response, negotiate
from bff.rate_limit import RATE_LIMITED, RateLimiter
from bff.settings import Settings, SettingsError

__all__ = [
    "PRINCIPAL",
    "UNAUTHENTICATED",
    "AuthenticationFailed",
    "Authenticator",
    "JWKSKeys",
    "Principal",
    "TooManyAuthFailures",
    "auth_middleware",
    "connection_init_credentials",
    "principal_of",
]

logger = logging.getLogger("bff.auth")

UNAUTHENTICATED = "UNAUTHENTICATED"
API_KEY_HEADER = "X-Api-Key"
JWKS_REFRESH_MIN_INTERVAL_S = 60.0
"""An unknown ``kid`` refetches the JWKS URL at most this often (keys rotate; attackers invent kids)."""
JWKS_FETCH_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a ``subject`` and the ``claims`` that prove what it may do.

    ``claims`` are a JWT's payload, or ``{"sub": ..., "role": ...}`` for an API key; the app maps them
    to its own rules (roles, ownership). ``authorization`` is the ``Authorization`` header to forward
    downstream, if any. ``expires_at`` is the token's ``exp`` (unix time, seconds); ``None`` for API
    keys, which do not expire. A WebSocket authenticated with a token is closed when it expires
    (:mod:`bff.view`), and the operation pipeline refuses its operations from then on.
    """

    subject: str
    claims: Mapping[str, Any] = field(default_factory=dict)
    via: Literal["jwt", "api_key"] = "jwt"
    authorization: str | None = None
    expires_at: float | None = None

    def claim(self, name: str, default: Any = None) -> Any:
        """One claim, or ``default`` when the principal has none of that name."""
        return self.claims.get(name, default)

    @property
    def rate_limit_key(self) -> str:
        """The key this principal's requests count under."""
        return f"{self.via}:{self.subject}"


PRINCIPAL = web.RequestKey("bff.principal", Principal)
"""Where :func:`auth_middleware` keeps the request's principal (absent when anonymous)."""


def principal_of(request: web.Request) -> Principal | None:
    """The request's principal, or ``None`` when it is anonymous."""
    return request.get(PRINCIPAL)


class AuthenticationFailed(Exception):
    """Credentials were presented and are not valid; ``str()`` says why, safely."""


class TooManyAuthFailures(Exception):
    """The client's IP failed to authenticate too often; ``retry_after`` is in whole seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed authentications from this address; retry in {retry_after} s.")
        self.retry_after = retry_after


# JWKS ---------------------------------------------------------------------------------------------


class JWKSKeys:
    """RS256 public keys by ``kid``, from a JWKS file (read once) or URL (refetched on unknown kids)."""

    def __init__(
        self,
        *,
        file: Path | None = None,
        url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = url
        self._transport = transport
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        if file is not None:
            try:
                self._keys = self._parse(json.loads(file.read_text()))
            except (OSError, ValueError, jwt.PyJWKError) as exc:
                raise SettingsError(f"BFF_JWT_JWKS_FILE: cannot read a JWKS from {file}: {exc}") from None

    @staticmethod
    def _parse(data: Any) -> dict[str | None, jwt.PyJWK]:
        keys: dict[str | None, jwt.PyJWK] = {}
        for entry in data.get("keys", []) if isinstance(data, dict) else []:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
                continue
            key = jwt.PyJWK(entry, algorithm="RS256")
            keys[entry.get("kid")] = key
        return keys

    async def _refresh(self) -> None:
        if self._url is None or time.monotonic() - self._fetched_at < JWKS_REFRESH_MIN_INTERVAL_S:
            return
        self._fetched_at = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=JWKS_FETCH_TIMEOUT_S, transport=self._transport) as client:
                response = await client.get(self._url)
                response.raise_for_status()
                self._keys = self._parse(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWKError) as exc:
            logger.warning("cannot fetch the JWKS from %s: %s", self._url, exc)

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key with ``kid`` (or the only key when the token names none); ``None`` if unknown."""
        found = self._lookup(kid)
        if found is None and self._url is not None:
            async with self._lock:
                found = self._lookup(kid)
                if found is None:
                    await self._refresh()
                    found = self._lookup(kid)
        return found

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)


# connection_init ----------------------------------------------------------------------------------

_CREDENTIAL_HEADERS: tuple[str, ...] = ("Authorization", API_KEY_HEADER)


def connection_init_credentials(payload: Mapping[str, object]) -> dict[str, str]:
    """The credentials of a WebSocket ``connection_init`` payload, as headers to authenticate.

    ``Authorization`` and ``X-Api-Key`` are read in any letter case, at the top level of the payload
    (``{"Authorization": "Bearer ..."}``) or under ``headers`` (``{"headers": {"authorization": ...}}``);
    the top level wins. Other entries are ignored. Raises :class:`AuthenticationFailed` when one of
    them is not a string.
    """
    found: dict[str, str] = {}
    nested = payload.get("headers")
    for source in (nested, payload) if isinstance(nested, Mapping) else (payload,):
        for key, value in source.items():
            name = next((h for h in _CREDENTIAL_HEADERS if str(key).lower() == h.lower()), None)
            if name is None:
                continue
            if not isinstance(value, str):
                raise AuthenticationFailed(f"{name} in connection_init must be a string.")
            found[name] = value
    return found


# Authenticator ------------------------------------------------------------------------------------


def _api_key_principal(spec: str) -> Principal:
    role, _, subject = spec.partition(":")
    if not role or not subject:
        raise SettingsError(f"BFF_API_KEYS: {spec!r} is not '<role>:<subject>', e.g. 'employee:andrew'")
    return Principal(subject=subject, claims={"sub": subject, "role": role}, via="api_key")


class Authenticator:
    """Turns request headers into a :class:`Principal` (or ``None``), per the settings."""

    def __init__(self, settings: Settings, *, jwks: JWKSKeys | None = None) -> None:
        secret = settings.jwt_hs256_secret
        self._hs256_secret = secret.get_secret_value() if secret is not None else None
        self._jwks = jwks
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_ms / 1000
        self._forward = settings.forward_authorization
        self._api_keys = {
            digest.lower(): _api_key_principal(spec) for digest, spec in settings.api_keys.items()
        }
        # In memory: no storage round trip before each check. Each instance counts on its own, so
        # a guesser spread over N instances gets N times the limit, still far from guessing speed.
        self._failures = RateLimiter(settings.auth_failure_limit, "memory://")

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> Authenticator:
        """An authenticator with the JWKS the settings name; raises ``SettingsError`` for a bad file."""
        jwks = None
        if settings.jwt_jwks_file is not None or settings.jwt_jwks_url is not None:
            url = str(settings.jwt_jwks_url) if settings.jwt_jwks_url is not None else None
            jwks = JWKSKeys(file=settings.jwt_jwks_file, url=url, transport=transport)
        return cls(settings, jwks=jwks)

    async def authenticate(self, headers: Mapping[str, str]) -> Principal | None:
        """The principal the headers prove, ``None`` without credentials.

        Raises :class:`AuthenticationFailed` for credentials that are not valid.
        """
        authorization = headers.get("Authorization")
        if authorization is not None:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthenticationFailed("The Authorization header must be 'Bearer <token>'.")
            principal = await self._from_jwt(token.strip())
            return replace(principal, authorization=authorization.strip()) if self._forward else principal
        api_key = headers.get(API_KEY_HEADER)
        if api_key is not None:
            found = self._api_keys.get(hashlib.sha256(api_key.strip().encode()).hexdigest())
            if found is None:
                raise AuthenticationFailed("The API key is not valid.")
            return found
        return None

    async def authenticate_client(self, headers: Mapping[str, str], client: str | None) -> Principal | None:
        """:meth:`authenticate` for a request from the IP address ``client``, throttled per address.

        Raises :class:`TooManyAuthFailures` without looking at the credentials once ``client`` has
        failed ``BFF_AUTH_FAILURE_LIMIT`` times, and :class:`AuthenticationFailed` (one more failure
        of ``client``) for bad ones. Requests without credentials are never throttled.
        """
        if headers.get("Authorization") is None and headers.get(API_KEY_HEADER) is None:
            return None
        key = f"auth-failures:{client}"
        retry_after = await self._failures.retry_after(key)
        if retry_after is not None:
            raise TooManyAuthFailures(int(retry_after))
        try:
            return await self.authenticate(headers)
        except AuthenticationFailed:
            await self._failures.hit(key)
            raise

    async def aclose(self, app: web.Application | None = None) -> None:
        """Stop the failure counter's expiry timer; an ``on_cleanup`` hook."""
        await self._failures.aclose()

    async def _key_for(self, header: Mapping[str, Any]) -> tuple[Any, str]:
        algorithm = header.get("alg")
        if algorithm == "HS256" and self._hs256_secret is not None:
            return self._hs256_secret, "HS256"
        if algorithm == "RS256" and self._jwks is not None:
            kid = header.get("kid")
            key = await self._jwks.key(kid if isinstance(kid, str) else None)
            if key is None:
                raise AuthenticationFailed("The token's signing key is unknown.")
            return key.key, "RS256"
        raise AuthenticationFailed(f"Tokens signed with {algorithm!r} are not accepted.")

    async def _from_jwt(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            key, algorithm = await self._key_for(header)
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed("The token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationFailed("The token is not valid yet.") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationFailed("The token is not meant for this audience.") from None
        except jwt.InvalidIssuerError:
            raise AuthenticationFailed("The token's issuer is not trusted.") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationFailed("The token's signature is not valid.") from None
        except jwt.PyJWTError:
            raise AuthenticationFailed("The token is not valid.") from None
        subject = claims["sub"]
        if not isinstance(subject, str):
            raise AuthenticationFailed("The token's subject is not valid.")
        return Principal(subject=subject, claims=claims, expires_at=float(claims["exp"]))


# Middleware ---------------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _media_type(accept: str | None) -> str:
    try:
        return negotiate(accept)
    except RequestRefused:  # an unusable Accept header must not hide a 401 or 429
        return APPLICATION_JSON


def unauthenticated_response(message: str, accept: str | None) -> web.Response:
    """HTTP 401 with ``UNAUTHENTICATED`` in the media type the client accepts (JSON if none)."""
    return error_response(
        401,
        UNAUTHENTICATED,
        message,
        media_type=_media_type(accept),
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def too_many_failures_response(exc: TooManyAuthFailures, accept: str | None) -> web.Response:
    """HTTP 429 with ``RATE_LIMITED``, ``Retry-After`` and ``extensions.retryAfter`` (seconds)."""
    return error_response(
        429,
        RATE_LIMITED,
        str(exc),
        media_type=_media_type(accept),
        headers={"Retry-After": str(exc.retry_after)},
        retryAfter=exc.retry_after,
    )


def auth_middleware(authenticator: Authenticator, path: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Authenticate requests to ``path`` (HTTP and WebSocket upgrades) and keep the principal."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != path or request.method == "OPTIONS":
            return await handler(request)
        try:
            principal = await authenticator.authenticate_client(request.headers, request.remote)
        except TooManyAuthFailures as exc:
            return too_many_failures_response(exc, request.headers.get("Accept"))
        except AuthenticationFailed as exc:
            return unauthenticated_response(str(exc), request.headers.get("Accept"))
        if principal is not None:
            request[PRINCIPAL] = principal
        return await handler(request)

    return middleware
