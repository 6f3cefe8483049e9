"""The metric schema: one description per metric, and what derives from it."""

from __future__ import annotations

import pytest

from skipsearch import metrics as schema
from skipsearch.results import COLUMNS, metric_label, objective_label
from skipsearch.results._labels import ideal_value
from skipsearch.results._query import numeric_columns
from skipsearch.tasks import METRIC_DIRECTIONS


def test_the_schema_describes_every_results_metric_once() -> None:
    names = [m.name for m in schema.all_metrics()]
    assert len(names) == len(set(names))
    for metric in schema.all_metrics():
        assert metric.description and metric.unit and metric.label
        if metric.alias_of is None:
            assert metric.name in COLUMNS and metric.name in numeric_columns()
    assert set(schema.probe_names()) == {"synflow", "naswot", "grad_norm", "snip", "jacob_cov", "gradflow"}


def test_labels_directions_and_ideals_come_from_the_schema() -> None:
    assert metric_label("miou") == "mIoU" and objective_label("accuracy", "rmse") == "RMSE"
    assert objective_label("naswot") == "NASWOT"
    assert METRIC_DIRECTIONS == {"accuracy": "max", "miou": "max", "rmse": "min", "r2": "max"}
    assert schema.natural_direction("synflow") == "max" and schema.natural_direction("macs") == "min"
    assert ideal_value("accuracy", "max") == 1.0 and ideal_value("macs", "min") == 0.0
    assert schema.column_of("miou") == "accuracy" and schema.column_of("snip") == "snip"


def test_registering_checks_the_entry() -> None:
    with pytest.raises(ValueError, match="already registered"):
        schema.register(schema.Metric("macs", "x", "count", "int", "min", "cost", "MACs"))
    with pytest.raises(ValueError, match="probes are stored in metric_values"):
        schema.register(schema.Metric("p", "x", "1", "float", "max", "probe", "p"))
    assert schema.get("p") is None
