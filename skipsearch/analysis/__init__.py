"""Why a topology wins, not only which: gradient flow, paths and effective depth, lesion studies,
edge effects across a study, graph metrics against outcomes, and the HTML study report.

* :func:`gradient_flow` - per-block weight-gradient norms at init (and after training), the
  first/last ratio and a ``vanishing`` / ``exploding`` / ``healthy`` flag.
* :func:`path_gradients` - Veit et al.'s gradient carried by the paths of each length.
* :func:`lesion_study` - delete each block (or additive skip) of a trained model at test time.
* :func:`edge_effects` - effect of every (edge, kind) on each objective with an interval;
  :func:`param_importances` - Optuna's fANOVA importances.
* :func:`metric_correlations` - graph metrics vs. accuracy and cost across studies.
* :func:`probe_correlations` - zero-cost probes (and params, MACs) vs. the trained metric, with
  bootstrap intervals; :func:`plot_probe_scatter` their scatter figure.
* :func:`write_report` - ``report.html`` with embedded figures, no network needed to view it.
"""

from skipsearch.analysis._correlations import GRAPH_METRICS, OUTCOMES, metric_correlations
from skipsearch.analysis._edges import describe_effects, edge_effects, edge_table, param_importances
from skipsearch.analysis._gradients import (
    GradientFlow,
    analysis_batch,
    gradient_flow,
    measure_flow,
)
from skipsearch.analysis._lesion import Lesion, LesionRow, lesion_mode, lesion_study
from skipsearch.analysis._paths import PathGradients, node_path_distributions, path_gradients, routed_forward
from skipsearch.analysis._probes import BASELINES, plot_probe_scatter, probe_correlations
from skipsearch.analysis._report import Report, write_report
from skipsearch.tasks import EXPLODING, VANISHING, flow_status, gradient_norms

__all__ = [
    "BASELINES",
    "EXPLODING",
    "GRAPH_METRICS",
    "OUTCOMES",
    "VANISHING",
    "GradientFlow",
    "Lesion",
    "LesionRow",
    "PathGradients",
    "Report",
    "analysis_batch",
    "describe_effects",
    "edge_effects",
    "edge_table",
    "flow_status",
    "gradient_flow",
    "gradient_norms",
    "lesion_mode",
    "lesion_study",
    "measure_flow",
    "metric_correlations",
    "node_path_distributions",
    "param_importances",
    "path_gradients",
    "plot_probe_scatter",
    "probe_correlations",
    "routed_forward",
    "write_report",
]
