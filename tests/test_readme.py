"""README.md stays true: every setting is documented, and its commands and code excerpts are the real ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bff.settings import ServiceSettings, Settings
from bff.telemetry.metrics import Metrics
from examples.jsonplaceholder import app as example_app
from examples.jsonplaceholder.data import DB_JSON
from examples.jsonplaceholder.demo import DEFAULT_PORT
from examples.jsonplaceholder.demo import JSON_SERVER_VERSION as DEMO_JSON_SERVER_VERSION
from tests.examples.test_jsonplaceholder_cli import DEMO, SCHEMA, SERVE
from tests.support.jsonserver import JSON_SERVER_VERSION

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
CI_RUN = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")


@pytest.mark.parametrize("field", sorted(set(Settings.model_fields) - {"services", "telemetry_env"}))
def test_every_setting_is_documented(field: str) -> None:
    """Each BFF_* variable appears in the README with its default."""
    assert f"`BFF_{field.upper()}`" in README


@pytest.mark.parametrize(
    "variable",
    [
        "PROMETHEUS_MULTIPROC_DIR",
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_SDK_DISABLED",
        "OTEL_BSP_SCHEDULE_DELAY",
    ],
)
def test_every_standard_variable_read_is_documented(variable: str) -> None:
    """The OpenTelemetry and prometheus-client variables the settings keep (telemetry_env) and the
    telemetry reads are in the README's "Operate it" section."""
    assert f"`{variable}`" in README[README.index("## Operate it") :]


@pytest.mark.parametrize("field", sorted(ServiceSettings.model_fields))
def test_every_service_setting_is_documented(field: str) -> None:
    """Each BFF_SERVICE_<NAME>_* variable appears in the README."""
    assert f"`BFF_SERVICE_<NAME>_{field.upper()}`" in README


@pytest.mark.parametrize("name", [name for name, _kind, _labels in Metrics().declared])
def test_every_metric_is_documented(name: str) -> None:
    """Each metric family the BFF exports has a row in "Operate it", by its exposed name."""
    assert f"| `{name}` |" in README[README.index("## Operate it") :]


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run ends with the README's test command, so CI tests what a newcomer runs."""
    assert "pip install -e '.[test]' && pytest" in README
    assert CI_RUN.rstrip().splitlines()[-1] == "pytest"


# "Put your own services behind bff": the tutorial over the example app --------------------------

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = README[README.index("## Put your own services behind bff") : README.index("### Settings")]
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```$", TUTORIAL, flags=re.MULTILINE | re.DOTALL)
EXCERPTS = [
    (code.split("\n", 1)[0].removeprefix("# "), code.split("\n", 1)[1])
    for language, code in BLOCKS
    if language == "python"
]
SHELL = "\n".join(code for language, code in BLOCKS if language == "sh").splitlines()


def test_the_tutorial_quotes_every_module_of_the_example() -> None:
    """The tutorial has Python excerpts, each naming its file, from the example's modules and its test."""
    assert {path for path, _ in EXCERPTS} == {
        "examples/jsonplaceholder/__init__.py",
        "examples/jsonplaceholder/resources.py",
        "examples/jsonplaceholder/types.py",
        "examples/jsonplaceholder/query.py",
        "tests/examples/test_jsonplaceholder.py",
    }


@pytest.mark.parametrize(("path", "excerpt"), EXCERPTS, ids=[path for path, _ in EXCERPTS])
def test_each_excerpt_is_a_true_copy_of_its_file(path: str, excerpt: str) -> None:
    """A Python excerpt of the tutorial (after its first line, the file's name) is in that file verbatim."""
    assert excerpt.count("\n") >= 3
    assert excerpt in (ROOT / path).read_text(encoding="utf-8")


def test_the_tutorial_commands_are_the_ones_the_tests_run() -> None:
    """json-server, ``bff serve``, ``bff demo`` and ``bff schema`` are as the example's tests run them."""
    assert DEMO_JSON_SERVER_VERSION == JSON_SERVER_VERSION
    data = DB_JSON.relative_to(ROOT)
    json_server = (
        f"npx json-server@{JSON_SERVER_VERSION} --read-only --host 127.0.0.1 --port {DEFAULT_PORT} {data}"
    )
    service_url = example_app.services["jsonplaceholder"].default_url
    assert service_url == f"http://127.0.0.1:{DEFAULT_PORT}"
    assert json_server in SHELL
    assert f"BFF_SERVICE_JSONPLACEHOLDER_URL={service_url} bff {' '.join(SERVE)}" in SHELL
    assert f"bff {' '.join(DEMO)}" in SHELL
    assert f"`bff {' '.join(SCHEMA)}`" in TUTORIAL
    assert "BFF_SERVICE_CUSTOMERS_URL=" in TUTORIAL  # the Chinook form stays
