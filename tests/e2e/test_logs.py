"""What the BFF logs about a client's mistakes, over real sockets: the code and where, never the values."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.e2e.stack import Stack

SECRET_VALUE = "secret-XYZ"
"""A value a client sends by mistake (say, a password in the wrong field); no log may repeat it."""


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        ("query ($n: Int) { tracks(first: $n) { totalCount } }", {"n": SECRET_VALUE}, None),
        ("query ($id: ID!) { track(id: $id) { name } }", {"id": {"password": SECRET_VALUE}}, None),
        (
            "mutation ($in: CreatePlaylistInput!) { createPlaylist(input: $in) { userErrors { code } } }",
            {"in": {"name": "x", SECRET_VALUE: 1}},
            None,
        ),
        (f'{{ tracks(first: "{SECRET_VALUE}") {{ totalCount }} }}', None, None),
        (f'{{ tracks(after: "{SECRET_VALUE}") {{ totalCount }} }}', None, "BAD_USER_INPUT"),
    ],
    ids=["variable-type", "variable-object", "input-field", "literal", "bad-cursor"],
)
async def test_client_errors_are_logged_without_the_clients_values(
    demo_stack: Stack,
    caplog: pytest.LogCaptureFixture,
    query: str,
    variables: dict[str, Any] | None,
    code: str | None,
) -> None:
    """A value that fails coercion or validation reaches the client's error but no log record at INFO+,
    while the error itself is still logged with its request id."""
    caplog.set_level(logging.INFO)
    body = await demo_stack.post(query, variables)
    [error] = body["errors"]
    assert code is None or error["extensions"]["code"] == code
    logged = [record for record in caplog.records if record.levelno >= logging.INFO]
    formatter = logging.Formatter()
    assert [formatter.format(record) for record in logged if SECRET_VALUE in formatter.format(record)] == []
    assert any(record.name == "bff.errors" for record in logged)
