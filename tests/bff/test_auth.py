"""Authentication: bearer JWTs (HS256, RS256 with a JWKS), API keys, and what they must refuse."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from bff.auth import AuthenticationFailed, Authenticator, Principal
from bff.settings import SettingsError
from tests.support.chinook import chinook_settings

SECRET = "s3cret-for-tests-only-0123456789abcdef"
AUDIENCE = "bff-tests"
ISSUER = "https://issuer.test"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    """One RSA key pair for the module."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks_file(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> Path:
    """A JWKS file with the public key under kid ``k1``."""
    jwk = RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    return path


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims for a customer, with ``overrides``."""
    now = int(time.time())
    return {
        "sub": "user-12",
        "customer_id": "12",
        "role": "customer",
        "aud": AUDIENCE,
        "iss": ISSUER,
        "iat": now,
        "exp": now + 600,
        **overrides,
    }


def authenticator(**environ: str) -> Authenticator:
    """An authenticator over settings from ``BFF_*`` variables (issuer and audience set)."""
    settings = chinook_settings({"BFF_JWT_AUDIENCE": AUDIENCE, "BFF_JWT_ISSUER": ISSUER, **environ})
    return Authenticator.from_settings(settings)


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}


async def test_valid_hs256_token_gives_the_principal() -> None:
    """A valid HS256 token yields its customer principal, keeping the header to forward and its exp."""
    body = claims()
    token = jwt.encode(body, SECRET, algorithm="HS256")
    principal = await authenticator(BFF_JWT_HS256_SECRET=SECRET).authenticate(bearer(token))
    assert principal is not None
    assert (principal.subject, principal.via, principal.expires_at) == ("user-12", "jwt", body["exp"])
    assert principal.authorization == f"Bearer {token}"
    assert principal.claim("customer_id") == "12"


async def test_valid_rs256_token_with_jwks_file(jwks_file: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    """An RS256 token signed by the JWKS's key (by kid) yields an employee principal."""
    token = jwt.encode(claims(role="employee"), rsa_key, algorithm="RS256", headers={"kid": "k1"})
    principal = await authenticator(BFF_JWT_JWKS_FILE=str(jwks_file)).authenticate(bearer(token))
    assert principal is not None
    assert principal.claim("role") == "employee"
    assert principal.subject == "user-12"


async def test_rs256_key_from_jwks_url(jwks_file: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    """A JWKS URL is fetched on the first token naming an unknown kid."""
    fetched: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        return httpx.Response(200, content=jwks_file.read_bytes())

    settings = chinook_settings(
        {"BFF_JWT_AUDIENCE": AUDIENCE, "BFF_JWT_ISSUER": ISSUER, "BFF_JWT_JWKS_URL": "http://idp.test/jwks"}
    )
    auth = Authenticator.from_settings(settings, transport=httpx.MockTransport(handler))
    token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "k1"})
    assert (await auth.authenticate(bearer(token))) is not None
    assert (await auth.authenticate(bearer(token))) is not None
    assert fetched == ["http://idp.test/jwks"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"nbf": int(time.time()) + 3600}, "not valid yet"),
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "https://evil.test"}, "issuer"),
    ],
    ids=["expired", "not-yet-valid", "wrong-audience", "wrong-issuer"],
)
async def test_invalid_claims_are_refused(overrides: dict[str, Any], message: str) -> None:
    """Expired, not yet valid, wrong audience and wrong issuer tokens fail with a reason."""
    token = jwt.encode(claims(**overrides), SECRET, algorithm="HS256")
    with pytest.raises(AuthenticationFailed, match=message):
        await authenticator(BFF_JWT_HS256_SECRET=SECRET).authenticate(bearer(token))


async def test_wrong_signature_is_refused() -> None:
    """A token signed with another secret fails."""
    token = jwt.encode(claims(), "another-secret-of-enough-length-0123456789", algorithm="HS256")
    with pytest.raises(AuthenticationFailed, match="signature"):
        await authenticator(BFF_JWT_HS256_SECRET=SECRET).authenticate(bearer(token))


async def test_alg_none_is_refused(jwks_file: Path) -> None:
    """An unsigned token (``alg: none``) fails whatever keys are configured."""
    token = jwt.encode(claims(), None, algorithm="none")
    auth = authenticator(BFF_JWT_HS256_SECRET=SECRET, BFF_JWT_JWKS_FILE=str(jwks_file))
    with pytest.raises(AuthenticationFailed, match="'none'"):
        await auth.authenticate(bearer(token))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("with_hs_secret", [False, True], ids=["rs-only", "hs-and-rs"])
async def test_hs_rs_confusion_is_refused(
    jwks_file: Path, rsa_key: rsa.RSAPrivateKey, with_hs_secret: bool
) -> None:
    """An HS256 token whose HMAC key is the RSA public key (algorithm confusion) fails."""
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    payload = _b64(json.dumps(claims(role="employee")).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{_b64(signature)}"
    environ = {"BFF_JWT_JWKS_FILE": str(jwks_file)}
    if with_hs_secret:
        environ["BFF_JWT_HS256_SECRET"] = SECRET
    with pytest.raises(AuthenticationFailed):
        await authenticator(**environ).authenticate(bearer(token))


async def test_rs256_token_is_refused_without_a_jwks(rsa_key: rsa.RSAPrivateKey) -> None:
    """An RS256 token fails when only an HS256 secret is configured."""
    token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "k1"})
    with pytest.raises(AuthenticationFailed, match="RS256"):
        await authenticator(BFF_JWT_HS256_SECRET=SECRET).authenticate(bearer(token))


async def test_unknown_kid_is_refused(jwks_file: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    """An RS256 token naming a kid the JWKS lacks fails."""
    token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "k9"})
    with pytest.raises(AuthenticationFailed, match="unknown"):
        await authenticator(BFF_JWT_JWKS_FILE=str(jwks_file)).authenticate(bearer(token))


async def test_token_without_exp_is_refused() -> None:
    """Tokens must expire: one without ``exp`` fails."""
    body = claims()
    del body["exp"]
    token = jwt.encode(body, SECRET, algorithm="HS256")
    with pytest.raises(AuthenticationFailed):
        await authenticator(BFF_JWT_HS256_SECRET=SECRET).authenticate(bearer(token))


async def test_malformed_authorization_headers_are_refused() -> None:
    """A non-Bearer scheme, an empty token and garbage fail; no header is anonymous."""
    auth = authenticator(BFF_JWT_HS256_SECRET=SECRET)
    for value in ("Basic dXNlcjpwYXNz", "Bearer ", "Bearer not.a.jwt", "Bearer ...."):
        with pytest.raises(AuthenticationFailed):
            await auth.authenticate({"Authorization": value})
    assert await auth.authenticate({}) is None


async def test_api_keys() -> None:
    """A known API key yields its principal; an unknown one fails."""
    keys = {hashlib.sha256(b"key-emp").hexdigest(): "employee:reporting"}
    auth = authenticator(BFF_API_KEYS=json.dumps(keys))
    principal = await auth.authenticate({"X-Api-Key": "key-emp"})
    assert principal == Principal("reporting", {"sub": "reporting", "role": "employee"}, "api_key")
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate({"X-Api-Key": "key-other"})


def test_bad_api_key_spec_and_jwks_file_stop_start_up(tmp_path: Path) -> None:
    """A malformed API key principal or an unreadable JWKS file is a settings error."""
    with pytest.raises(SettingsError, match="BFF_API_KEYS"):
        authenticator(BFF_API_KEYS=json.dumps({"ab" * 32: "admin"}))
    with pytest.raises(SettingsError, match="BFF_JWT_JWKS_FILE"):
        authenticator(BFF_JWT_JWKS_FILE=str(tmp_path / "missing.json"))
