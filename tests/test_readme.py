"""README.md stays true: every setting is documented and the two commands are the real ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from bff.settings import ServiceSettings, Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
CI_RUN = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")


@pytest.mark.parametrize("field", sorted(set(Settings.model_fields) - {"services"}))
def test_every_setting_is_documented(field: str) -> None:
    """Each BFF_* variable appears in the README with its default."""
    assert f"`BFF_{field.upper()}`" in README


@pytest.mark.parametrize("field", sorted(ServiceSettings.model_fields))
def test_every_service_setting_is_documented(field: str) -> None:
    """Each BFF_SERVICE_<NAME>_* variable appears in the README."""
    assert f"`BFF_SERVICE_<NAME>_{field.upper()}`" in README


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run ends with the README's test command, so CI tests what a newcomer runs."""
    assert "pip install -e '.[test]' && pytest" in README
    assert CI_RUN.rstrip().splitlines()[-1] == "pytest"
