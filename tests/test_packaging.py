"""The package as pip installs it: what the wheel carries, and a fresh venv that runs `bff demo`.

The slow test builds the wheel once (from a copy of the sources that need packaging, so nothing is
written into the checkout), makes a venv without the system's site-packages, installs the PyPI
package ``schema`` and then the wheel, non-editable, with its dependencies from the registry (pip's
cache makes that quick after the first run), and runs ``bff`` from a directory outside the checkout.
Deselect it with ``-m "not slow"``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bff import graphiql
from bff.graphiql import ASSETS, SETUP_COMMAND
from tests.support.processes import post, start_server, stop
from tests.support.tools import missing

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SOURCES = ("pyproject.toml", "setup.py", "README.md", "bff", "schema", "resolvers", "demo")
"""What a wheel is built from (node_modules aside: only the files of ``ASSETS`` are copied)."""
PYPI_SCHEMA = "schema>=0.7,<1"
"""The PyPI package whose top-level name the Chinook app once took (``schema.Schema``)."""
PIP_TIMEOUT_S = 300


@dataclass(frozen=True)
class Venv:
    """A fresh venv with the wheel and PyPI's ``schema`` installed, and a directory outside the checkout."""

    root: Path
    outside: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def bff(self) -> Path:
        return self.root / "bin" / "bff"

    def env(self) -> dict[str, str]:
        """The environment of a user of the venv: no BFF_ settings, nothing of this checkout on the path."""
        dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
        env = {k: v for k, v in os.environ.items() if not k.startswith("BFF_") and k not in dropped}
        env["PATH"] = f"{self.root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env


def test_package_data_lists_exactly_the_graphiql_assets() -> None:
    """pyproject's package data names every file of bff.graphiql.ASSETS and no other npm file."""
    listed = {
        path.removeprefix("graphiql/node_modules/")
        for path in PYPROJECT["tool"]["setuptools"]["package-data"]["bff"]
        if path.startswith("graphiql/node_modules/")
    }

    assert listed == {f"{asset.package}/{asset.path}" for asset in ASSETS.values()}


def _run(
    args: list[str | Path], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``args``; on failure fail the test with the end of its stderr."""
    result = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=PIP_TIMEOUT_S
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def _copy_sources(target: Path, assets_dir: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "node_modules", "*.egg-info", "build")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)
    for asset in ASSETS.values():
        file = target / "bff" / "graphiql" / "node_modules" / asset.package / asset.path
        file.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(assets_dir / asset.package / asset.path, file)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """The wheel of this checkout and PyPI's ``schema``, installed in a new venv (non-editable)."""
    assets_dir = graphiql.find_assets_dir(None)
    if assets_dir is None:
        missing(f"GraphiQL assets (`{SETUP_COMMAND}`), which the wheel must carry")
    tmp = tmp_path_factory.mktemp("packaging")
    source, wheels, outside = tmp / "source", tmp / "wheels", tmp / "outside"
    source.mkdir()
    outside.mkdir()
    _copy_sources(source, assets_dir)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", source, "-w", wheels])
    (wheel,) = wheels.glob("bff-*.whl")

    venv = Venv(tmp / "venv", outside)
    _run([sys.executable, "-m", "venv", venv.root])
    pip = [venv.python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    probe = subprocess.run(
        [*map(str, pip), PYPI_SCHEMA], capture_output=True, text=True, timeout=PIP_TIMEOUT_S
    )
    if probe.returncode != 0:
        missing(f"the PyPI registry (pip install {PYPI_SCHEMA}: {probe.stderr.strip()[-300:]})")
    _run([*pip, wheel], cwd=outside)
    return venv


@pytest.mark.slow
def test_installed_app_package_sits_beside_pypi_schema(venv: Venv) -> None:
    """`import schema` is PyPI's package and `bff_chinook.schema` the app, both installed in the venv;
    only PyPI's distribution provides the top-level name ``schema``."""
    code = textwrap.dedent(
        """
        import importlib.metadata as md, json, pathlib
        import bff, bff_chinook.schema, schema

        assert schema.Schema(int).validate(5) == 5
        schema_files = {str(pathlib.Path(f.locate()).resolve()) for f in md.distribution("schema").files}
        print(json.dumps({
            "schema_from_schema": str(pathlib.Path(schema.__file__).resolve()) in schema_files,
            "providers": md.packages_distributions().get("schema"),
            # The bff distribution's top-level names, less its scripts (../../../bin/bff).
            "bff_top_level": sorted({f.parts[0] for f in md.distribution("bff").files} - {".."}),
            "files": [bff.__file__, bff_chinook.schema.__file__],
            "app": type(bff_chinook.schema.app).__name__,
        }))
        """
    )
    result = json.loads(_run([venv.python, "-c", code], cwd=venv.outside, env=venv.env()).stdout)

    assert "include-system-site-packages = false" in (venv.root / "pyvenv.cfg").read_text()
    assert result["schema_from_schema"] is True
    assert result["providers"] == ["schema"]
    assert [name for name in result["bff_top_level"] if not name.endswith(".dist-info")] == [
        "bff",
        "bff_chinook",
    ]
    assert all(Path(file).is_relative_to(venv.root) for file in result["files"]), result["files"]
    assert result["app"] == "App"


@pytest.mark.slow
async def test_installed_bff_demo_answers_and_serves_graphiql_offline(venv: Venv) -> None:
    """`bff demo --port 0` of the installed package, run outside the checkout, answers a query and
    serves GraphiQL's files itself; it stops with 0 on SIGTERM."""
    process, url = await start_server([str(venv.bff), "demo", "--port", "0"], venv.env(), cwd=venv.outside)
    try:
        assert await post(url, {"query": '{ artist(id: "1") { name } }'}) == {
            "data": {"artist": {"name": "AC/DC"}}
        }
        async with httpx.AsyncClient() as client:
            page = await client.get(url, headers={"Accept": "text/html"})
            script = ASSETS["graphiql.min.js"].local_url("graphiql.min.js", graphiql.DEFAULT_ASSETS_PREFIX)
            asset = await client.get(url.removesuffix("/graphql") + script)
        assert page.status_code == 200
        assert "unpkg" not in page.text
        assert script in page.text
        assert asset.status_code == 200
        assert len(asset.content) > 1_000_000
    finally:
        code = await stop(process)
    assert code == 0
