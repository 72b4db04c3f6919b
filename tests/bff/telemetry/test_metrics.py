"""bff.telemetry.metrics: names and units per the Prometheus conventions, bounded labels."""

from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bff.contract import contract_violations_counter
from bff.subscription_groups import SubscriptionGroups
from bff.telemetry.metrics import MAX_LABEL_VALUES, OTHER, UNKNOWN, BoundedLabel, Metrics, status_class

ALLOWED_LABELS = {
    "operation_type",
    "operation_name",
    "outcome",
    "code",
    "limit",
    "service",
    "method",
    "status_class",
    "state",
    "field",
    "topic",
    "endpoint",
    "resource",
    "coordinate",
    "reason",
}
"""Every label the BFF uses: each has a bounded set of values (see bff.telemetry.metrics)."""


@pytest.fixture(scope="module")
def metrics() -> Metrics:
    return Metrics()


def test_names_and_units_follow_the_prometheus_conventions(metrics: Metrics) -> None:
    """bff_ prefix, snake case, counters end in _total, histograms measure _seconds, gauges have no
    _total, and every label is one of the bounded ones."""
    assert len(metrics.declared) == 35
    for name, kind, labels in metrics.declared:
        assert re.fullmatch(r"bff_[a-z_]+", name), name
        if kind == "counter":
            assert name.endswith("_total"), name
        elif kind == "histogram":
            assert name.endswith("_seconds"), name
        else:
            assert not name.endswith("_total"), name
        assert set(labels) <= ALLOWED_LABELS, (name, labels)


def test_every_declared_family_is_in_the_exposition(metrics: Metrics) -> None:
    """What the registry exposes is what was declared, with its type and help text."""
    exposed = {
        family.name: family for family in text_string_to_metric_families(metrics.exposition().decode())
    }
    for name, kind, _labels in metrics.declared:
        family = exposed[name.removesuffix("_total")]
        assert family.type == kind
        assert family.documentation


def test_process_collectors_are_registered(metrics: Metrics) -> None:
    """One process: the default process, platform and GC collectors are there too."""
    text = metrics.exposition().decode()
    assert "process_cpu_seconds_total" in text
    assert "python_gc_objects_collected_total" in text
    assert "python_info" in text


def test_app_labels_are_bounded() -> None:
    """Past MAX_LABEL_VALUES distinct values a label reads `other`; known values stay themselves."""
    label = BoundedLabel()
    values = [label(f"topic.{n}") for n in range(MAX_LABEL_VALUES + 5)]
    assert values[:MAX_LABEL_VALUES] == [f"topic.{n}" for n in range(MAX_LABEL_VALUES)]
    assert set(values[MAX_LABEL_VALUES:]) == {OTHER}
    assert label("topic.0") == "topic.0"


@pytest.mark.parametrize(
    ("code", "label"),
    [("NOT_FOUND", "NOT_FOUND"), (None, UNKNOWN), ("not a code", UNKNOWN), ("X" * 65, UNKNOWN), (7, UNKNOWN)],
)
def test_error_codes_are_checked_before_they_become_labels(code: object, label: str) -> None:
    """Only SCREAMING_SNAKE codes of at most 64 characters become label values."""
    assert Metrics().error_code(code) == label


def test_the_kits_own_counters_are_followed() -> None:
    """A bff.counters.Counter the kit keeps is exported with what it counted before and after."""
    metrics = Metrics()
    violations = contract_violations_counter()
    violations.inc("catalog", "tracks", "name")
    metrics.follow(violations)
    violations.inc("catalog", "tracks", "name", amount=2)
    text = metrics.exposition().decode()
    line = 'bff_downstream_contract_violations_total{field="name",resource="tracks",service="catalog"} 3.0'
    assert line in text


def test_the_subscription_groups_counters_are_followed_without_labels() -> None:
    """Executions and deliveries of the subscription groups are exported, counters without labels."""
    metrics = Metrics()
    groups = SubscriptionGroups(queue_size=4)
    groups.executions.inc()
    metrics.follow(groups.executions)
    metrics.follow(groups.deliveries)
    groups.executions.inc()
    groups.deliveries.inc(amount=1000)
    text = metrics.exposition().decode()
    assert "bff_subscription_executions_total 2.0" in text
    assert "bff_subscription_deliveries_total 1000.0" in text


def test_status_classes() -> None:
    """HTTP statuses are labelled by class."""
    assert [status_class(s) for s in (200, 304, 404, 503)] == ["2xx", "3xx", "4xx", "5xx"]
