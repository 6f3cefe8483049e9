"""Tasks (local, in-memory datasets with a metric) and the training loop.

``load_task(name)`` gives a :class:`TaskData` of train/validation/test tensors; ``train_model``
trains a model built by :func:`skipsearch.nn.build_model` on it with a :class:`TrainConfig` and
returns a :class:`TrainResult`. Searches see validation metrics only; the test metric of the
final model is computed once, at the end.
"""

from skipsearch.tasks._arrays import SplitSettings, task_from_arrays
from skipsearch.tasks._batched import FusionError, auto_batch_size, fusion_key, train_batched
from skipsearch.tasks._config import MAX_THREADS, TrainConfig
from skipsearch.tasks._data import METRIC_DIRECTIONS, METRICS, REGRESSION_METRICS, TaskData, reshape_for
from skipsearch.tasks._files import DATA_PATH_ENV, combined_fingerprint, fingerprint, infer_kind
from skipsearch.tasks._gradients import (
    DEFAULT_BATCH,
    EXPLODING,
    VANISHING,
    analysis_batch,
    flow_ratio,
    flow_status,
    gradient_norms,
    hidden_blocks,
)
from skipsearch.tasks._limits import check_loaded, check_run, check_task_size, planned_size
from skipsearch.tasks._metrics import evaluate, finite_or_none, mean_iou, regression_loss, task_loss
from skipsearch.tasks._outcome import training_metrics
from skipsearch.tasks._plugins import ENTRY_POINT_GROUP, import_function
from skipsearch.tasks._probes import (
    PROBE_BATCH,
    PROBES,
    ProbeInputs,
    compute_probes,
    probe_batch,
    probe_names,
    register_probe,
)
from skipsearch.tasks._recipe import Recipe
from skipsearch.tasks._registry import TASKS, USER_DATA_TASKS, TaskSpec, discover_tasks, load_task
from skipsearch.tasks._train import (
    TopologyRun,
    TrainResult,
    observe_epochs,
    resolve_device,
    seed_everything,
    seeded_model,
    train_model,
    train_topology,
)

__all__ = [
    "DATA_PATH_ENV",
    "DEFAULT_BATCH",
    "ENTRY_POINT_GROUP",
    "EXPLODING",
    "MAX_THREADS",
    "METRICS",
    "METRIC_DIRECTIONS",
    "PROBES",
    "PROBE_BATCH",
    "REGRESSION_METRICS",
    "TASKS",
    "USER_DATA_TASKS",
    "VANISHING",
    "FusionError",
    "ProbeInputs",
    "Recipe",
    "SplitSettings",
    "TaskData",
    "TaskSpec",
    "TopologyRun",
    "TrainConfig",
    "TrainResult",
    "analysis_batch",
    "auto_batch_size",
    "check_loaded",
    "check_run",
    "check_task_size",
    "combined_fingerprint",
    "compute_probes",
    "discover_tasks",
    "evaluate",
    "fingerprint",
    "finite_or_none",
    "flow_ratio",
    "flow_status",
    "fusion_key",
    "gradient_norms",
    "hidden_blocks",
    "import_function",
    "infer_kind",
    "load_task",
    "mean_iou",
    "observe_epochs",
    "planned_size",
    "probe_batch",
    "probe_names",
    "register_probe",
    "regression_loss",
    "reshape_for",
    "resolve_device",
    "seed_everything",
    "seeded_model",
    "task_from_arrays",
    "task_loss",
    "train_batched",
    "train_model",
    "train_topology",
    "training_metrics",
]
