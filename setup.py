"""Build hook: install GraphiQL's pinned npm files before the package is built.

Everything else about the package is in pyproject.toml. GraphiQL's files (React, GraphiQL, the
explorer plugin) come from npm, pinned by ``bff/graphiql/package-lock.json``; none are in the
repository. So that ``pip install .`` and ``pip install -e .`` give a playground that works
offline, ``build_py`` first runs ``npm ci --prefix bff/graphiql`` when ``bff/graphiql/node_modules``
is missing and ``npm`` is on the PATH, as JupyterLab's packaging runs its JavaScript build. The
files GraphiQL's page needs are package data (pyproject.toml), so a wheel carries them.

Without npm, or when it fails, the build goes on with a warning: the BFF then serves a page that
loads the same files from unpkg.com, and says so when the browser cannot reach it.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

GRAPHIQL = Path(__file__).resolve().parent / "bff" / "graphiql"
NPM_CI = ["ci", "--prefix", str(GRAPHIQL), "--no-audit", "--no-fund"]
NPM_TIMEOUT_S = 600


class BuildPyWithGraphiQL(build_py):
    """``build_py`` that first installs GraphiQL's npm files if they are not there yet."""

    def run(self) -> None:
        if (GRAPHIQL / "package-lock.json").is_file() and not (GRAPHIQL / "node_modules").exists():
            self._npm_ci()
            # Package data is listed when first asked for; list it again now that the files exist.
            self.__dict__.pop("data_files", None)
        super().run()

    def _npm_ci(self) -> None:
        npm = shutil.which("npm")
        if npm is None:
            self.warn(
                "npm is not on the PATH: GraphiQL's files are not installed, so the playground will "
                "load them from unpkg.com (run `npm ci --prefix bff/graphiql` and reinstall to serve them)"
            )
            return
        self.announce(f"installing GraphiQL's files: npm {' '.join(NPM_CI)}", level=logging.INFO)
        try:
            subprocess.run([npm, *NPM_CI], check=True, timeout=NPM_TIMEOUT_S)
        except (OSError, subprocess.SubprocessError) as exc:
            shutil.rmtree(GRAPHIQL / "node_modules", ignore_errors=True)
            self.warn(
                f"`npm ci --prefix bff/graphiql` failed ({exc}): the playground will load GraphiQL's "
                "files from unpkg.com"
            )


setup(cmdclass={"build_py": BuildPyWithGraphiQL})
