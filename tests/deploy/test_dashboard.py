"""deploy/grafana/bff.json: every expression names metrics (and labels) the BFF exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bff.telemetry.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "bff.json"
PROMQL_WORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
)
IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
ALWAYS_LABELS = frozenset({"instance", "job"})
"""Labels Prometheus adds to every scraped series."""


def exported() -> dict[str, set[str]]:
    """Every sample name the BFF exports, with the label names it carries."""
    metrics = Metrics()
    names: dict[str, set[str]] = {}
    for name, kind, labels in metrics.declared:
        suffixes = ("_bucket", "_count", "_sum") if kind == "histogram" else ("",)
        for suffix in suffixes:
            names[name + suffix] = set(labels) | ({"le"} if suffix == "_bucket" else set())
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def expressions(node: Any) -> Iterator[str]:
    """Every ``expr`` in the dashboard, however deeply nested."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from expressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from expressions(item)


def parse(expr: str) -> tuple[set[str], set[str]]:
    """The metric names and the label names a PromQL expression uses."""
    labels: set[str] = set()
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        labels.update(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    for grouping in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        labels.update(label.strip() for label in grouping.split(",") if label.strip())
    bare = re.sub(r'"[^"]*"', "", expr)
    bare = re.sub(r"\{[^}]*\}", "", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    bare = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", bare)
    names = set()
    for match in IDENTIFIER.finditer(bare):
        word = match.group()
        rest = bare[match.end() :].lstrip()
        if word in PROMQL_WORDS or rest.startswith("("):
            continue  # a keyword or a function
        names.add(word)
    return names, labels


DASHBOARD_JSON = json.loads(DASHBOARD.read_text(encoding="utf-8"))
EXPRESSIONS = list(expressions(DASHBOARD_JSON))
EXPORTED = exported()


def test_the_dashboard_has_expressions() -> None:
    """The dashboard is Grafana JSON with panels whose targets hold PromQL."""
    assert DASHBOARD_JSON["panels"]
    assert len(EXPRESSIONS) >= 20


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_every_expression_names_exported_metrics_and_their_labels(expr: str) -> None:
    """Each metric an expression names is one the BFF exports, and each label it matches or groups
    by is a label of one of those metrics."""
    names, labels = parse(expr)
    assert names, expr
    unknown = names - set(EXPORTED)
    assert not unknown, f"{expr}: not exported: {sorted(unknown)}"
    known_labels = set().union(*(EXPORTED[name] for name in names)) | ALWAYS_LABELS
    assert labels <= known_labels, f"{expr}: labels {sorted(labels - known_labels)} are on none of {names}"


def test_the_dashboard_covers_latency_errors_downstream_cache_and_subscriptions() -> None:
    """The issue's sections each have a panel: latency, errors by code, downstream health per service,
    the cache, subscriptions."""
    used = set().union(*(parse(expr)[0] for expr in EXPRESSIONS))
    assert {
        "bff_operation_duration_seconds_bucket",
        "bff_operation_errors_total",
        "bff_downstream_request_duration_seconds_bucket",
        "bff_downstream_breaker_state",
        "bff_cache_hits_total",
        "bff_cache_misses_total",
        "bff_subscriptions_active",
    } <= used


def test_the_parser_finds_names_and_labels() -> None:
    """The check itself: functions, keywords, matchers, ranges and groupings are told apart."""
    names, labels = parse(
        'sum by (service) (rate(bff_cache_hits_total{service=~"a|b"}[5m]))'
        " / on (service) group_left sum(x_total)"
    )
    assert names == {"bff_cache_hits_total", "x_total"}
    assert labels == {"service"}
