"""Tasks (local, in-memory datasets with a metric) and the training loop.

``load_task(name)`` gives a :class:`TaskData` of train/validation/test tensors; ``train_model``
trains a model built by :func:`skipsearch.nn.build_model` on it with a :class:`TrainConfig` and
returns a :class:`TrainResult`. Searches see validation metrics only; the test metric of the
final model is computed once, at the end.
"""

from skipsearch.tasks._config import TrainConfig
from skipsearch.tasks._data import METRICS, TaskData, reshape_for
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
from skipsearch.tasks._metrics import evaluate, finite_or_none, mean_iou
from skipsearch.tasks._registry import TASKS, TaskSpec, load_task
from skipsearch.tasks._train import (
    TopologyRun,
    TrainResult,
    resolve_device,
    seed_everything,
    train_model,
    train_topology,
)

__all__ = [
    "DEFAULT_BATCH",
    "EXPLODING",
    "METRICS",
    "TASKS",
    "VANISHING",
    "TaskData",
    "TaskSpec",
    "TopologyRun",
    "TrainConfig",
    "TrainResult",
    "analysis_batch",
    "evaluate",
    "finite_or_none",
    "flow_ratio",
    "flow_status",
    "gradient_norms",
    "hidden_blocks",
    "load_task",
    "mean_iou",
    "reshape_for",
    "resolve_device",
    "seed_everything",
    "train_model",
    "train_topology",
]
