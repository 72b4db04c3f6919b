"""Settings come from BFF_* variables; a bad one is reported by name."""

from __future__ import annotations

import pytest

from bff.settings import SettingsError
from tests.support.chinook import chinook_settings


def test_defaults_point_at_the_demo_services() -> None:
    """With no variables set, the BFF listens on 127.0.0.1:8000 and calls the demo ports."""
    settings = chinook_settings({})
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.service("catalog").base_url == "http://127.0.0.1:8002"
    assert settings.service("sales").max_url_length == 2000


def test_per_service_variables_and_overrides() -> None:
    """BFF_SERVICE_<NAME>_<FIELD> sets one service; keyword overrides beat the environment."""
    settings = chinook_settings(
        {
            "BFF_SERVICE_CATALOG_URL": "http://catalog.internal:9000/api/",
            "BFF_SERVICE_CATALOG_MAX_BATCH_SIZE": "25",
            "BFF_PORT": "9999",
        },
        port=8123,
    )
    assert settings.service("catalog").base_url == "http://catalog.internal:9000/api"
    assert settings.service("catalog").max_batch_size == 25
    assert settings.port == 8123


def test_the_response_cache_is_off_by_default_and_bounded_in_bytes() -> None:
    """BFF_RESPONSE_CACHE turns the whole-response cache on; BFF_RESPONSE_CACHE_BYTES bounds it (at
    least 1,024 bytes)."""
    default = chinook_settings({})
    assert (default.response_cache, default.response_cache_bytes) == (False, 64_000_000)
    on = chinook_settings({"BFF_RESPONSE_CACHE": "true", "BFF_RESPONSE_CACHE_BYTES": "2048"})
    assert (on.response_cache, on.response_cache_bytes) == (True, 2048)
    with pytest.raises(SettingsError, match=r"^BFF_RESPONSE_CACHE_BYTES"):
        chinook_settings({"BFF_RESPONSE_CACHE_BYTES": "10"})


def test_settings_are_frozen() -> None:
    """Settings cannot be changed after start-up."""
    settings = chinook_settings({})
    with pytest.raises(ValueError, match="frozen"):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"BFF_SERVICE_SALES_URL": "not a url"}, "BFF_SERVICE_SALES_URL"),
        ({"BFF_SERVICE_SALES_READ_TIMEOUT_MS": "-5"}, "BFF_SERVICE_SALES_READ_TIMEOUT_MS"),
        ({"BFF_PORT": "eighty"}, "BFF_PORT"),
        ({"BFF_PROT": "80"}, "BFF_PROT"),
        ({"BFF_EVENT_LOOP": "trio"}, "BFF_EVENT_LOOP"),
        ({"BFF_SERVICE_BILLING_URL": "http://x"}, "BFF_SERVICE_BILLING_URL"),
    ],
)
def test_bad_settings_name_the_variable(environ: dict[str, str], variable: str) -> None:
    """A malformed, unknown or out-of-range variable raises one line that names it."""
    with pytest.raises(SettingsError) as caught:
        chinook_settings(environ)
    message = str(caught.value)
    assert message.startswith(variable)
    assert "\n" not in message


@pytest.mark.parametrize("secret", ["x", "s" * 31, "\u00e9" * 15])
def test_hs256_secret_shorter_than_32_bytes_is_refused(secret: str) -> None:
    """An HS256 secret under 32 bytes (UTF-8) is refused by name, without echoing it; 32 bytes pass."""
    with pytest.raises(SettingsError, match=r"^BFF_JWT_HS256_SECRET: .*32 bytes") as caught:
        chinook_settings({"BFF_JWT_HS256_SECRET": secret})
    assert secret not in str(caught.value)
    assert chinook_settings({"BFF_JWT_HS256_SECRET": "\u00e9" * 16}).jwt_hs256_secret is not None


def test_production_profile_sets_its_defaults_and_lets_variables_win() -> None:
    """BFF_PROFILE=production closes the playground, introspection and suggestions; explicit values win."""
    secret = "s" * 32
    settings = chinook_settings({"BFF_PROFILE": "production", "BFF_JWT_HS256_SECRET": secret})
    assert (settings.graphiql, settings.introspection, settings.field_suggestions) == (False, False, False)
    assert (settings.auth_required, settings.csrf_prevention) == (True, True)
    assert settings.rate_limit == "20/second;1000/minute"
    mixed = chinook_settings(
        {"BFF_PROFILE": "production", "BFF_JWT_HS256_SECRET": secret, "BFF_INTROSPECTION": "true"}
    )
    assert mixed.introspection is True
    assert chinook_settings({}).graphiql is True


def test_production_profile_needs_authentication() -> None:
    """Without a JWT key source or API keys the production profile refuses to start, naming why."""
    with pytest.raises(SettingsError, match=r"^BFF_PROFILE: production needs authentication"):
        chinook_settings({"BFF_PROFILE": "production"})
