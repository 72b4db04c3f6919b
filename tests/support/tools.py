"""Tests that need a third-party tool: skip locally when it is missing, fail under CI=true."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """True under CI (``CI=true`` or ``CI=1``), where no test may be skipped for a missing tool."""
    return os.environ.get("CI", "").lower() in {"true", "1"}


def missing(what: str) -> NoReturn:
    """Skip the test because ``what`` is not installed; fail it instead under CI."""
    reason = f"{what} not installed"
    if in_ci():
        pytest.fail(f"{reason} (required when CI=true)", pytrace=False)
    pytest.skip(reason)
