"""One trial: sample a topology, reuse or train it, measure it, and tell Optuna.

Everything a trial learns is stored as trial user attributes (so optuna-dashboard shows it and the
results tables can be rebuilt from the Optuna storage alone); :mod:`skipsearch.search._record`
copies finished trials into the results tables.
"""

from __future__ import annotations

import json
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from skipsearch import metrics as schema
from skipsearch.errors import UserError
from skipsearch.nn import cpu_threads, model_cost, model_device, model_topology
from skipsearch.search._config import StudyConfig
from skipsearch.search._early_stopping import FinishedTrial, ParetoEarlyStopper
from skipsearch.search._limits import check_trial_topology
from skipsearch.search._space import SearchSpace
from skipsearch.search._storage import is_connection_error
from skipsearch.tasks import (
    METRIC_DIRECTIONS,
    TaskData,
    TrainResult,
    analysis_batch,
    check_task_size,
    compute_probes,
    finite_or_none,
    flow_ratio,
    gradient_norms,
    load_task,
    probe_batch,
    seeded_model,
    train_model,
    training_metrics,
)
from skipsearch.topology import Topology, graph_metrics


def metric_attrs() -> tuple[str, ...]:
    """Trial user attributes that hold the metrics of a trained (or reused) topology: every stored
    metric of the schema (:func:`skipsearch.metrics.stored_metric_names`)."""
    return schema.stored_metric_names()


METRIC_ATTRS = metric_attrs()
"""The metric attributes of the built-in schema (:func:`metric_attrs` sees metrics added later)."""


class TrialFailed(Exception):
    """A trial that cannot produce a result (diverged training); its reason is recorded."""


class Objective:
    """The Optuna objective of a study: callable on a trial, returns the objective values."""

    def __init__(self, config: StudyConfig, space: SearchSpace, data: TaskData | None = None) -> None:
        self.config = config
        self.space = space
        if data is None:
            check_task_size(config.task.name, config.task.options, config.limits, epochs=config.train_config.epochs)
        self.data = data or load_task(config.task.name, seed=config.seed, **config.task.options)
        self.cost_names = [o.column for o in config.objectives if o.direction == "minimize" and o.column != "accuracy"]
        self.train_config = config.train_config

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        try:
            return self._evaluate(trial)
        except (optuna.TrialPruned, TrialFailed):
            raise
        except Exception as exc:  # a shape error or out-of-memory fails this trial, not the study
            if is_connection_error(exc):  # the database's fault, not the topology's: the worker retries it
                raise
            trial.set_user_attr("failure_reason", f"{type(exc).__name__}: {exc}"[:2000])
            raise

    # -- steps ----------------------------------------------------------------------------------
    def _evaluate(self, trial: optuna.Trial) -> float | list[float]:
        topology = self.space.sample(trial)
        self._admit(trial, topology)
        # Read once: deduplication and the Pareto early stopper both look at the finished trials.
        finished = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if self.config.execution.dedupe and (earlier := self._find_evaluated(finished, topology.hash)) is not None:
            return self._reuse(trial, earlier)
        model, stopper = self._prepare(trial, topology, finished)
        result = train_model(model, self.data, self.train_config, seed=self.config.seed, should_stop=stopper)
        self._store_result(trial, result)
        if result.status != "diverged":
            self._gradient_flow(trial, model, "grad_ratio")
        if result.status == "diverged":
            trial.set_user_attr("failure_reason", result.reason)
            raise TrialFailed(result.reason)
        if result.status == "stopped":
            reason = getattr(stopper, "reason", None) or f"pruned at epoch {result.epochs_run} by the study's pruner"
            trial.set_user_attr("stop_reason", reason)
            raise optuna.TrialPruned(reason)
        self._constrain(trial, trial.user_attrs)
        return self._values(trial.user_attrs)

    def _probes(self, trial: optuna.Trial, model: torch.nn.Module) -> None:
        """The study's zero-cost probes of the untrained model, on the study's seeded probe batch."""
        names = self.config.probe_names
        if not names:
            return
        x, y = probe_batch(self.data, model_topology(model).input_shape, self.config.seed)
        with cpu_threads(self.train_config.threads):
            scores = compute_probes(model, x, y, names)
        for name, value in scores.items():
            trial.set_user_attr(name, value)

    def _constrain(self, trial: optuna.Trial, attrs: dict[str, Any], *, before_training: bool = False) -> bool:
        """Sets Optuna's constraint value of each study constraint whose metric is known (before
        training: costs and probes); returns whether one of them is broken."""
        broken = False
        for constraint in self.config.constraints:
            if before_training and constraint.column not in attrs:
                continue  # a trained metric: judged once the training is done
            violation = constraint.violation(attrs.get(constraint.column))
            key = f"{constraint.metric}{constraint.op}{constraint.bound:g}"
            if key not in trial.constraints:  # set once: Optuna keeps the first value
                trial.set_constraint(key, violation)
            broken = broken or violation > 0
        return broken

    def _broken(self, attrs: dict[str, Any]) -> list[str]:
        return [
            f"{c.metric}{c.op}{c.bound:g} ({c.metric} {attrs.get(c.column)})"
            for c in self.config.constraints
            if c.column in attrs and c.violation(attrs.get(c.column)) > 0
        ]

    def _admit(self, trial: optuna.Trial, topology: Topology) -> None:
        """Records what the trial samples; prunes it when it has more active skips than the space allows."""
        active = self.space.active_count(topology)
        self._describe(trial, topology, active)
        limit = self.config.space.max_active
        if limit is not None and active > limit:
            reason = f"{active} active skip edges exceed space.max_active={limit}"
            trial.set_user_attr("stop_reason", reason)
            raise optuna.TrialPruned(reason)

    def _reuse(self, trial: optuna.Trial, earlier: FrozenTrial) -> float | list[float]:
        """The trial takes the metrics of ``earlier``, which trained the same topology."""
        for key in (*metric_attrs(), "curve"):
            if key in earlier.user_attrs:
                trial.set_user_attr(key, earlier.user_attrs[key])
        trial.set_user_attr("reused_from", earlier.number)
        self._constrain(trial, earlier.user_attrs)
        return self._values(earlier.user_attrs)

    def _prepare(self, trial: optuna.Trial, topology: Topology, finished: list[FrozenTrial]) -> tuple[Any, Any]:
        """Everything before training: limits, the seeded model, its costs and probes, the
        constraints and the early stopper. Raises :class:`TrialFailed` or ``TrialPruned`` with the
        reason recorded; returns the model and its stopper."""
        try:  # a topology the limits refuse fails its trial with the reason, before any allocation
            check_trial_topology(self.config, topology, self.data)
        except UserError as exc:
            trial.set_user_attr("failure_reason", str(exc))
            raise TrialFailed(str(exc)) from None
        model = seeded_model(topology, self.config.seed)
        costs = model_cost(model, topology.input_shape).to_dict()
        for key, value in costs.items():
            trial.set_user_attr(key, value)
        self._probes(trial, model)
        if self._constrain(trial, trial.user_attrs, before_training=True):
            reason = "breaks the constraints " + ", ".join(self._broken(trial.user_attrs)) + " before training"
            trial.set_user_attr("stop_reason", reason)
            raise optuna.TrialPruned(reason)
        stopper = self._stopper(trial, costs, finished)
        self._gradient_flow(trial, model, "grad_ratio_init")
        return model, stopper

    def _describe(self, trial: optuna.Trial, topology: Topology, active: int) -> None:
        metrics = graph_metrics(topology)
        trial.set_user_attr("hash", topology.hash)
        trial.set_user_attr("topology", topology.to_json(indent=None))
        trial.set_user_attr("task", self.config.task.name)
        trial.set_user_attr("seed", self.config.seed)
        trial.set_user_attr("active_skips", active)
        trial.set_user_attr("paths", metrics.paths_float)
        trial.set_user_attr("longest_path", metrics.longest_path)
        trial.set_user_attr("shortest_path", metrics.shortest_path)

    def _gradient_flow(self, trial: optuna.Trial, model: torch.nn.Module, key: str) -> None:
        """First/last hidden block gradient ratio on the first training samples, if the study asks."""
        if not self.config.analysis.gradient_flow:
            return
        x, y = analysis_batch(self.data, model_topology(model))
        device = model_device(model)
        with cpu_threads(self.train_config.threads):
            norms, _ = gradient_norms(model, x.to(device), y.to(device))
        trial.set_user_attr(key, finite_or_none(flow_ratio(norms)))

    def _store_result(self, trial: optuna.Trial, result: TrainResult) -> None:
        for key, value in training_metrics(result).items():
            trial.set_user_attr(key, value)

    def _values(self, attrs: dict[str, Any]) -> float | list[float]:
        values = [float(attrs[o.column]) for o in self.config.objectives]
        return values if self.config.multi_objective else values[0]

    # -- history --------------------------------------------------------------------------------
    def _find_evaluated(self, finished: list[FrozenTrial], topology_hash: str) -> FrozenTrial | None:
        """A finished trial of this study that trained the same topology with the same seed."""
        for done in finished:
            attrs = done.user_attrs
            if attrs.get("hash") == topology_hash and attrs.get("seed") == self.config.seed:
                return done
        return None

    def _stopper(self, trial: optuna.Trial, costs: dict[str, Any], finished: list[FrozenTrial]) -> Any:
        early = self.config.early_stopping
        if not early.enabled:
            return None
        if not self.config.multi_objective:
            if early.pruner == "none":
                return None

            def report(epoch: int, value: float) -> bool:
                trial.report(value, epoch)
                return trial.should_prune()

            return report
        history = [
            FinishedTrial(t.number, tuple(float(t.user_attrs[c]) for c in self.cost_names), _curve(t))
            for t in finished
            if all(t.user_attrs.get(c) is not None for c in self.cost_names)
        ]
        return ParetoEarlyStopper(
            history,
            [float(costs[c]) for c in self.cost_names],
            self.train_config.epochs,
            min_epoch_fraction=early.min_epoch_fraction,
            margin=early.margin,
            metric=self.data.metric,
            maximize=METRIC_DIRECTIONS[self.data.metric] == "max",
            number=trial.number,
        )


def _curve(trial: FrozenTrial) -> tuple[float, ...]:
    return tuple(v for v in trial.user_attrs.get("curve", []) if v is not None)


FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def evaluated(trial: FrozenTrial) -> bool:
    """Whether a trial finished its evaluation: COMPLETE, PRUNED, or FAIL with the objective's reason
    (a killed worker's trial fails without one; Optuna retries it, so it evaluated nothing)."""
    if trial.state == TrialState.FAIL:
        return "failure_reason" in trial.user_attrs
    return trial.state in FINISHED_STATES


def topology_of(trial: FrozenTrial) -> Topology | None:
    """The topology a trial evaluated, from its user attributes."""
    text = trial.user_attrs.get("topology")
    return Topology.from_dict(json.loads(text)) if text else None
