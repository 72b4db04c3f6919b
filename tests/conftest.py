"""Fixtures shared by every test package."""

pytest_plugins = ["tests.support.jsonserver", "tests.support.redis"]
