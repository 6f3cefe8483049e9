"""Search studies: study files, search spaces, the trial objective, early stopping and workers."""

from skipsearch.search._config import StudyConfig, load_study_config, parse_study_config
from skipsearch.search._early_stopping import FinishedTrial, ParetoEarlyStopper
from skipsearch.search._objective import METRIC_ATTRS, Objective, TrialFailed, topology_of
from skipsearch.search._record import evaluation_record, recording_callback, sync_results
from skipsearch.search._space import Candidate, SearchSpace
from skipsearch.search._storage import DEFAULT_STORAGE, check_url, open_storage, safe_url
from skipsearch.search._study import (
    CONFIG_ATTR,
    StopAtTarget,
    counted_trials,
    create_study,
    load_study,
    make_pruner,
    make_sampler,
    run_local_workers,
    run_worker,
)

__all__ = [
    "CONFIG_ATTR",
    "DEFAULT_STORAGE",
    "METRIC_ATTRS",
    "Candidate",
    "FinishedTrial",
    "Objective",
    "ParetoEarlyStopper",
    "SearchSpace",
    "StopAtTarget",
    "StudyConfig",
    "TrialFailed",
    "check_url",
    "counted_trials",
    "create_study",
    "evaluation_record",
    "load_study",
    "load_study_config",
    "make_pruner",
    "make_sampler",
    "open_storage",
    "parse_study_config",
    "recording_callback",
    "run_local_workers",
    "run_worker",
    "safe_url",
    "sync_results",
    "topology_of",
]
