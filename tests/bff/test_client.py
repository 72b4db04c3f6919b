"""ServiceClient: JSON in and out, request ids forwarded, failures mapped to coded errors."""

from __future__ import annotations

import httpx
import pytest

from bff.downstream import REQUEST_ID_HEADER, Call, ServiceClient, parse_retry_after
from bff.errors import (
    DownstreamError,
    DownstreamTimeout,
    DownstreamUnavailable,
    NotFound,
    RateLimited,
)
from bff.settings import ServiceSettings


def client_for(handler: httpx.MockTransport) -> ServiceClient:
    return ServiceClient(
        "sales", ServiceSettings.model_validate({"url": "http://sales.test/"}), transport=handler
    )


async def test_forwards_request_id_and_decodes_json() -> None:
    """Every call carries the operation's request id and returns the decoded body."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[{"id": 1}])

    client = client_for(httpx.MockTransport(handler))
    response = await client.get("/invoices", call=Call("abc-123"), params=[("id", "1"), ("id", "2")])
    await client.aclose()
    assert response.body == [{"id": 1}]
    assert seen[0].headers[REQUEST_ID_HEADER] == "abc-123"
    assert str(seen[0].url) == "http://sales.test/invoices?id=1&id=2"


@pytest.mark.parametrize(
    ("status", "headers", "error", "code"),
    [
        (404, {}, NotFound, "NOT_FOUND"),
        (429, {"Retry-After": "7"}, RateLimited, "RATE_LIMITED"),
        (502, {}, DownstreamUnavailable, "DOWNSTREAM_UNAVAILABLE"),
        (503, {}, DownstreamUnavailable, "DOWNSTREAM_UNAVAILABLE"),
        (504, {}, DownstreamUnavailable, "DOWNSTREAM_UNAVAILABLE"),
        (500, {}, DownstreamError, "DOWNSTREAM_ERROR"),
        (400, {}, DownstreamError, "DOWNSTREAM_ERROR"),
    ],
)
async def test_error_statuses_map_to_codes(
    status: int, headers: dict[str, str], error: type[DownstreamError], code: str
) -> None:
    """Each error status becomes the matching error with its code and the service name."""
    client = client_for(
        httpx.MockTransport(lambda r: httpx.Response(status, headers=headers, text="secret stack"))
    )
    with pytest.raises(error) as caught:
        await client.get("/invoices/1", call=Call("r"))
    await client.aclose()
    assert type(caught.value) is error
    assert caught.value.extensions["code"] == code
    assert caught.value.extensions["service"] == "sales"
    assert "secret" not in str(caught.value)
    if status == 429:
        assert caught.value.extensions["retryAfter"] == 7.0


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (httpx.ReadTimeout("slow"), DownstreamTimeout),
        (httpx.ConnectTimeout("slow"), DownstreamTimeout),
        (httpx.ConnectError("refused"), DownstreamUnavailable),
        (httpx.RemoteProtocolError("reset"), DownstreamUnavailable),
    ],
)
async def test_transport_errors_map_to_codes(exc: httpx.TransportError, error: type[DownstreamError]) -> None:
    """Timeouts and connection failures become DOWNSTREAM_TIMEOUT and DOWNSTREAM_UNAVAILABLE."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    client = client_for(httpx.MockTransport(handler))
    with pytest.raises(error):
        await client.get("/invoices", call=Call("r"))
    await client.aclose()


async def test_body_that_is_not_json_is_a_downstream_error() -> None:
    """A 200 whose body is not JSON is DOWNSTREAM_ERROR, not a crash."""
    client = client_for(httpx.MockTransport(lambda r: httpx.Response(200, text="<html>")))
    with pytest.raises(DownstreamError) as caught:
        await client.get("/invoices", call=Call("r"))
    await client.aclose()
    assert caught.value.extensions["code"] == "DOWNSTREAM_ERROR"


async def test_cookies_a_service_sets_are_never_sent_back() -> None:
    """The client is shared by every user's operations: a ``Set-Cookie`` answered to one call must
    not ride on the next (another user's) call to the service."""
    cookies: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        cookies.append(request.headers.get("Cookie"))
        return httpx.Response(200, json={}, headers={"Set-Cookie": "session=alice; Path=/"})

    client = client_for(httpx.MockTransport(handler))
    await client.get("/customers/1", call=Call("first"))
    await client.get("/customers/2", call=Call("second"))
    await client.aclose()
    assert cookies == [None, None]


def test_parse_retry_after_seconds_and_http_date() -> None:
    """Retry-After is read as delay-seconds or as an HTTP-date (RFC 9110 section 10.2.3)."""
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
