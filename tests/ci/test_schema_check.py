"""``.ci/schema-check``: CI fails when a change breaks the SDL checked in at the base commit.

Each test builds a small git repository with an app of its own and the script, commits a base and
a change, and runs the script as ``.ci/run`` does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tools import missing

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "schema-check"

APP = """
import strawberry
from bff import App


@strawberry.type
class Query:
{fields}


app = App(name="tiny", query=Query, services={{}})
"""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BFF_", "SCHEMA_BASE_REF"))}
    env["PYTHON"] = sys.executable
    return env


def sdl_of(repo: Path) -> str:
    """What `bff schema` prints for the repository's app."""
    done = subprocess.run(
        [sys.executable, "-m", "bff.cli", "schema", "--app", "tiny:app"],
        cwd=repo,
        env=clean_env(),
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout


def commit(repo: Path, fields: str, message: str) -> None:
    """Write the app with ``fields`` and its SDL, and commit both."""
    (repo / "tiny.py").write_text(APP.format(fields=fields), encoding="utf-8")
    (repo / "schema.graphql").write_text(sdl_of(repo), encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty git repository with the schema-check script in its ``.ci/``."""
    if shutil.which("git") is None:
        missing("git")
    (tmp_path / ".ci").mkdir()
    shutil.copy(SCRIPT, tmp_path / ".ci" / "schema-check")
    git(tmp_path, "init", "-q", "-b", "main")
    return tmp_path


def run_check(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", ".ci/schema-check", "tiny:app=schema.graphql"],
        cwd=repo,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


NAME = """    @strawberry.field
    def name(self) -> str:
        return "n"
"""
SIZE = """    @strawberry.field
    def size(self) -> int:
        return 1
"""
SIZE_DEPRECATED = """    @strawberry.field(deprecation_reason="Use name.")
    def size(self) -> int:
        return 1
"""


def test_a_breaking_change_fails_ci(repo: Path) -> None:
    """Removing a field the base had, without deprecating it first, fails with the change named."""
    commit(repo, NAME + SIZE, "base")
    commit(repo, NAME, "remove size")
    done = run_check(repo)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "breaking: FIELD_REMOVED: Field Query.size was removed." in done.stdout


def test_deprecate_then_remove_passes_ci(repo: Path) -> None:
    """Deprecating a field passes; removing it in the next commit, deprecated at the base, passes too."""
    commit(repo, NAME + SIZE, "base")
    commit(repo, NAME + SIZE_DEPRECATED, "deprecate size")
    deprecated = run_check(repo)
    assert deprecated.returncode == 0, deprecated.stdout + deprecated.stderr
    commit(repo, NAME, "remove size")
    removed = run_check(repo)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert "deprecated, removed: FIELD_REMOVED: Field Query.size was removed." in removed.stdout


def test_the_merge_base_with_origin_main_is_the_base_on_a_branch(repo: Path) -> None:
    """On a branch two commits past origin/main, the base is the merge base, not the previous commit."""
    commit(repo, NAME + SIZE, "base")
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, NAME, "remove size")
    commit(
        repo,
        NAME
        + """    @strawberry.field
    def other(self) -> int:
        return 2
""",
        "add other",
    )
    done = run_check(repo)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Field Query.size was removed." in done.stdout


def test_a_first_commit_or_a_new_sdl_has_nothing_to_break(repo: Path) -> None:
    """With no parent commit, or an SDL file new since the base, the check says so and passes."""
    commit(repo, NAME, "first")
    first = run_check(repo)
    assert first.returncode == 0
    assert "nothing to compare" in first.stdout
    git(repo, "rm", "-q", "schema.graphql")
    git(repo, "commit", "-q", "-m", "drop the sdl")
    commit(repo, NAME, "bring it back")
    new = run_check(repo)
    assert new.returncode == 0, new.stdout + new.stderr
    assert "is new since the base" in new.stdout
