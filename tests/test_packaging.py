"""The package as pip installs it: what the wheel carries, and a fresh venv that runs `bff demo`."""

from __future__ import annotations

import tomllib
from pathlib import Path

from bff.graphiql import ASSETS

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_package_data_lists_exactly_the_graphiql_assets() -> None:
    """pyproject's package data names every file of bff.graphiql.ASSETS and no other npm file."""
    listed = {
        path.removeprefix("graphiql/node_modules/")
        for path in PYPROJECT["tool"]["setuptools"]["package-data"]["bff"]
        if path.startswith("graphiql/node_modules/")
    }

    assert listed == {f"{asset.package}/{asset.path}" for asset in ASSETS.values()}
