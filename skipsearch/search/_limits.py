"""A study file's limits, checked while the file is read: before anything is stored or trained.

See :mod:`skipsearch.topology._limits` for the limits themselves. A study is refused when its
backbone, its search space's candidate edges or its task's data exceed them; a topology a trial
samples is checked again before its model is built (see :func:`check_trial_topology`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from skipsearch.errors import UserError
from skipsearch.tasks import USER_DATA_TASKS, TaskData, check_loaded, check_task_size
from skipsearch.topology import Topology, check_graph, check_topology

if TYPE_CHECKING:
    from skipsearch.search._config import StudyConfig


def check_study_limits(config: StudyConfig, backbone: Topology, source: str) -> TaskData:
    """Checks the study's graph, data and network against ``config.limits``, then makes (or reuses)
    the task's data, so that a task option the builder refuses fails here and not in the first
    trial. Returns the data (cached: the objective reuses it)."""
    limits, train = config.limits, config.train_config
    try:
        check_graph(backbone, limits, where="backbone")
        candidates = _candidate_bound(config, backbone)
        limits.check("edges", len(backbone.skips) + candidates, f"space: up to {candidates:,} candidate skip edges")
        if config.task.name not in USER_DATA_TASKS:
            check_task_size(config.task.name, config.task.options, limits, epochs=train.epochs)
        data = config.task.load(config.seed)
        check_loaded(data, limits, epochs=train.epochs)
        batch = max(1, min(train.batch_size, len(data.x_train)))
        check_topology(backbone, limits, batch=batch, training=True, where="backbone")
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None
    return data


def _candidate_bound(config: StudyConfig, backbone: Topology) -> int:
    """At most how many candidate edges the space has (counted without building any)."""
    space = config.space
    if space.edges is not None:
        return len(space.edges)
    nodes = len(backbone.nodes)
    span = min(space.max_span or nodes, nodes)
    return max(0, span - space.min_span + 1) * nodes


def check_trial_topology(config: StudyConfig, topology: Topology, data: TaskData) -> None:
    """A sampled topology against the limits, before its model is built (raises :class:`UserError`)."""
    train = config.train_config
    batch = max(1, min(train.batch_size, len(data.x_train)))
    check_topology(topology, config.limits, batch=batch, training=True)
