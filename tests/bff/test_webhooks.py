"""Webhook settings and signature checks without a server: secrets, tolerance, rotation."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from bff.app import create_app
from bff.settings import SettingsError
from bff.webhooks import WebhookRejected, WebhookVerifier
from bff_chinook.demo.payments import signed_headers
from tests.support.chinook import chinook_app, chinook_settings

NEW = "whsec_" + base64.b64encode(b"the new secret, thirty-two bytes").decode()
OLD = "whsec_" + base64.b64encode(b"the old secret, thirty-two bytes").decode()


def headers_for(body: str, secret: str, *, at: float) -> dict[str, str]:
    """Standard Webhooks headers signing ``body`` with ``secret`` at unix time ``at``."""
    return signed_headers(Webhook(secret), "msg_1", body, datetime.fromtimestamp(at, tz=UTC))


def test_secrets_are_a_comma_separated_list_never_shown() -> None:
    """BFF_WEBHOOK_SECRETS holds several secrets; their values do not appear in the settings' repr."""
    settings = chinook_settings({"BFF_WEBHOOK_SECRETS": f"{NEW}, {OLD}"})
    assert [secret.get_secret_value() for secret in settings.webhook_secrets] == [NEW, OLD]
    assert NEW not in repr(settings)


@pytest.mark.parametrize(
    "environ", [{"BFF_WEBHOOK_SECRETS": "whsec_%%%"}, {"BFF_WEBHOOK_TOLERANCE_S": "301"}]
)
def test_bad_webhook_settings_name_the_variable(environ: dict[str, str]) -> None:
    """A secret that is not base64, or a tolerance above 300 s, stops start-up naming the variable."""
    variable = next(iter(environ))
    with pytest.raises(SettingsError, match=f"^{variable}"):
        create_app(chinook_settings(environ), chinook_app)


def test_verifier_accepts_any_configured_secret_within_tolerance() -> None:
    """Both secrets verify during a rotation; the tolerance bounds the timestamp both ways."""
    now = time.time()  # the library checks its own clock too (within 5 min)
    verifier = WebhookVerifier([NEW, OLD], tolerance_s=60, clock=lambda: now)
    body = '{"type": "charge.succeeded"}'
    assert verifier.verify(body.encode(), headers_for(body, OLD, at=now - 59)) == "msg_1"
    assert verifier.verify(body.encode(), headers_for(body, NEW, at=now + 59)) == "msg_1"
    for late in (now - 61, now + 61):
        with pytest.raises(WebhookRejected) as rejected:
            verifier.verify(body.encode(), headers_for(body, NEW, at=late))
        assert (rejected.value.status, rejected.value.code) == (401, "WEBHOOK_TIMESTAMP_OUT_OF_RANGE")


def test_verifier_without_secrets_is_not_configured() -> None:
    """No secret: the verifier says so (the endpoint answers 503) rather than accepting anything."""
    assert not WebhookVerifier([], tolerance_s=300, clock=time.time).configured
