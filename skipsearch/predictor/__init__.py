"""A graph neural predictor of a topology's accuracy, trained on evaluated trials, that steers the search.

``topology_to_data`` turns a :class:`~skipsearch.topology.Topology` into a PyG graph, ``fit_predictor``
trains an ensemble of GINE regressors (MSE + pairwise ranking loss), ``evaluate_predictor`` reports
Kendall tau and Spearman on held-out topologies, and ``PredictorSampler`` is the Optuna sampler
(``sampler: predictor`` in a study file).
"""

from skipsearch.predictor._data import dataset_from_results, features_from_results
from skipsearch.predictor._graphs import EDGE_FEATURES, NODE_FEATURES, topology_to_data
from skipsearch.predictor._model import Ensemble, GraphRegressor
from skipsearch.predictor._sampler import CLAIM_ATTR, PredictorSampler
from skipsearch.predictor._train import (
    FitConfig,
    Predictor,
    evaluate_predictor,
    feature_values,
    fit_predictor,
    rank_scores,
    ranking_loss,
)

__all__ = [
    "CLAIM_ATTR",
    "EDGE_FEATURES",
    "NODE_FEATURES",
    "Ensemble",
    "FitConfig",
    "GraphRegressor",
    "Predictor",
    "PredictorSampler",
    "dataset_from_results",
    "evaluate_predictor",
    "feature_values",
    "features_from_results",
    "fit_predictor",
    "rank_scores",
    "ranking_loss",
    "topology_to_data",
]
