"""The results store: every finished trial, its topology and its metrics, in SQL next to Optuna's tables.

``connect(url)`` opens (and creates or migrates) the database; ``record_evaluation`` writes one trial;
``evaluations`` and ``pareto`` read them back. The schema is documented in docs/results-schema.md.
"""

from skipsearch.db import normalise_url
from skipsearch.results._configs import config_objectives, save_study_config, study_config
from skipsearch.results._labels import format_number, metric_label, objective_label
from skipsearch.results._models import (
    VERSION_TABLE,
    EdgeRow,
    EvaluationRow,
    MetricValueRow,
    StudyConfigRow,
    TopologyRow,
)
from skipsearch.results._pareto import (
    DEFAULT_OBJECTIVES,
    ParetoResult,
    front_mask,
    hypervolume,
    hypervolume_history,
    hypervolume_improvements,
    hypervolume_text,
    non_dominated_ranks,
    normalised_hypervolume,
    pareto,
    parse_objectives,
)
from skipsearch.results._plot import DOMINATED_COLOUR, FRONT_COLOUR, axis_label, pareto_axes, plot_pareto
from skipsearch.results._query import COLUMNS, Condition, evaluations, parse_where
from skipsearch.results._record import (
    METRICS,
    STATES,
    EvaluationRecord,
    delete_study_rows,
    record_evaluation,
    record_evaluations,
    recorded_trial_numbers,
    rename_study_rows,
    study_names,
    study_row_keys,
)
from skipsearch.results._schema import (
    connect,
    ensure_schema,
    head_revision,
    require_existing_file,
    schema_revision,
)

__all__ = [
    "COLUMNS",
    "DEFAULT_OBJECTIVES",
    "DOMINATED_COLOUR",
    "FRONT_COLOUR",
    "METRICS",
    "STATES",
    "VERSION_TABLE",
    "Condition",
    "EdgeRow",
    "EvaluationRecord",
    "EvaluationRow",
    "MetricValueRow",
    "ParetoResult",
    "StudyConfigRow",
    "TopologyRow",
    "axis_label",
    "config_objectives",
    "connect",
    "delete_study_rows",
    "ensure_schema",
    "evaluations",
    "format_number",
    "front_mask",
    "head_revision",
    "hypervolume",
    "hypervolume_history",
    "hypervolume_improvements",
    "hypervolume_text",
    "metric_label",
    "non_dominated_ranks",
    "normalise_url",
    "normalised_hypervolume",
    "objective_label",
    "pareto",
    "pareto_axes",
    "parse_objectives",
    "parse_where",
    "plot_pareto",
    "record_evaluation",
    "record_evaluations",
    "recorded_trial_numbers",
    "rename_study_rows",
    "require_existing_file",
    "save_study_config",
    "schema_revision",
    "study_config",
    "study_names",
    "study_row_keys",
]
