"""Bearer tokens for end-to-end tests: HS256, signed with one shared test secret."""

from __future__ import annotations

import time
from typing import Any

import jwt

SECRET = "e2e-secret-0123456789abcdef0123456789"
"""The HS256 secret the test BFFs are configured with (``BFF_JWT_HS256_SECRET``)."""


def token(**claims: Any) -> str:
    """An HS256 token signed with :data:`SECRET`, valid for ten minutes unless ``exp`` is given."""
    now = int(time.time())
    return jwt.encode({"iat": now, "exp": now + 600, **claims}, SECRET, algorithm="HS256")


def customer(customer_id: str) -> str:
    """An ``Authorization`` value of a customer."""
    return f"Bearer {token(sub=f'customer-{customer_id}', customer_id=customer_id)}"


def employee() -> str:
    """An ``Authorization`` value of an employee (who sees every customer's data)."""
    return f"Bearer {token(sub='employee-1', role='employee')}"
