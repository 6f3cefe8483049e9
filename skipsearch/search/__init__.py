"""Search studies: study files, search spaces, the trial objective, early stopping and workers."""

from skipsearch.search._artifacts import ARTIFACT_DIR_ENV, TopologyArtifacts, artifact_dir_for, open_artifact_store
from skipsearch.search._config import StudyConfig, load_study_config, parse_study_config
from skipsearch.search._early_stopping import FinishedTrial, ParetoEarlyStopper, share_peers
from skipsearch.search._hypervolume import (
    REFERENCE_ATTR,
    default_reference_point,
    ensure_reference_point,
    stored_reference_point,
    study_reference_point,
)
from skipsearch.search._objective import METRIC_ATTRS, Objective, TrialFailed, topology_of
from skipsearch.search._plots import DashboardPlots, save_dashboard_plots
from skipsearch.search._record import (
    adopt_renamed_rows,
    evaluation_record,
    orphan_names,
    recording_callback,
    sync_results,
)
from skipsearch.search._recover import (
    OrphanRepair,
    RecoveryReport,
    migrate_storage,
    recover_study,
    repair_orphan_rows,
)
from skipsearch.search._space import Candidate, SearchSpace
from skipsearch.search._storage import (
    CONNECTIONS_PER_WORKER,
    check_url,
    is_connection_error,
    open_storage,
    safe_url,
)
from skipsearch.search._study import (
    CONFIG_ATTR,
    STOP_GRACE,
    StopAtTarget,
    counted_trials,
    create_study,
    load_study,
    make_pruner,
    make_sampler,
    run_local_workers,
    run_worker,
)
from skipsearch.search._worker import INTERRUPTED_ATTR, WORKER_ATTR, default_worker_index

__all__ = [
    "ARTIFACT_DIR_ENV",
    "CONFIG_ATTR",
    "CONNECTIONS_PER_WORKER",
    "INTERRUPTED_ATTR",
    "METRIC_ATTRS",
    "REFERENCE_ATTR",
    "STOP_GRACE",
    "WORKER_ATTR",
    "Candidate",
    "DashboardPlots",
    "FinishedTrial",
    "Objective",
    "OrphanRepair",
    "ParetoEarlyStopper",
    "RecoveryReport",
    "SearchSpace",
    "StopAtTarget",
    "StudyConfig",
    "TopologyArtifacts",
    "TrialFailed",
    "adopt_renamed_rows",
    "artifact_dir_for",
    "check_url",
    "counted_trials",
    "create_study",
    "default_reference_point",
    "default_worker_index",
    "ensure_reference_point",
    "evaluation_record",
    "is_connection_error",
    "load_study",
    "load_study_config",
    "make_pruner",
    "make_sampler",
    "migrate_storage",
    "open_artifact_store",
    "open_storage",
    "orphan_names",
    "parse_study_config",
    "recording_callback",
    "recover_study",
    "repair_orphan_rows",
    "run_local_workers",
    "run_worker",
    "safe_url",
    "save_dashboard_plots",
    "share_peers",
    "stored_reference_point",
    "study_reference_point",
    "sync_results",
    "topology_of",
]
