"""A worker that asks Optuna for K trials at once and trains their topologies together.

With ``execution.batch_trials: K`` (or ``auto``) a worker asks the study for K trials (TPE then
lies about the running ones: ``constant_liar``), samples, dedupes and measures each as
:class:`~skipsearch.search.Objective` does, trains the ones that need training with
:func:`skipsearch.tasks.train_batched`, and tells each trial its own result. Every trial keeps what
a one-at-a-time trial has: its heartbeat (one thread beats for the whole group), its ``worker``
attribute, results row, dedup and picture, and the study's callbacks see it finish.

A worker killed mid-group leaves its K trials RUNNING; their heartbeats stop, and the existing
recovery (any worker's ``fail_stale_trials``, or ``skipsearch recover``) fails and re-queues each.
On SIGTERM the group may finish within the grace period; past it, every trial of the group is
failed and re-queued, as a lone trial would be.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import optuna
from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

from skipsearch.search._artifacts import TopologyArtifacts
from skipsearch.search._early_stopping import share_peers
from skipsearch.search._objective import Objective, TrialFailed, metric_attrs
from skipsearch.search._storage import is_connection_error
from skipsearch.search._worker import WORKER_ATTR, Shutdown, TrackedObjective, worker_id
from skipsearch.tasks import TrainResult, resolve_device, seeded_model, train_model
from skipsearch.tasks._batched import auto_batch_size, train_batched
from skipsearch.topology import Topology

_logger = logging.getLogger("skipsearch.worker")

Callback = Callable[[optuna.Study, FrozenTrial], None]


@dataclass
class _Member:
    """One asked trial of a group and how far it got."""

    trial: _BufferedTrial
    topology: Topology | None = None
    model: Any = None
    stopper: Any = None
    values: float | list[float] | None = None
    error: BaseException | None = None
    """Set when the trial is decided: TrialPruned, TrialFailed or an unexpected error."""
    leader: int | None = None
    """Index of the group member with the same topology: this one reuses its training."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def decided(self) -> bool:
        return self.values is not None or self.error is not None


class _BufferedTrial:
    """A trial whose user attributes are kept until :func:`_write_attrs` stores a group's in one
    transaction: about 20 attributes a trial, each its own commit otherwise. Everything else
    (suggestions, reports, the study) goes to the trial itself."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self.pending: dict[str, Any] = {}

    def set_user_attr(self, key: str, value: Any) -> None:
        self.pending[key] = value
        self.trial._cached_frozen_trial.user_attrs[key] = value  # what ``trial.user_attrs`` reads

    def __getattr__(self, name: str) -> Any:
        return getattr(self.trial, name)


def _write_attrs(study: optuna.Study, trials: Sequence[_BufferedTrial]) -> None:
    """Stores the pending user attributes of ``trials`` (one transaction on an RDB storage)."""
    items = [(t.trial._trial_id, k, v) for t in trials for k, v in t.pending.items()]
    for t in trials:
        t.pending = {}
    if not items:
        return
    storage = study._storage
    backend = getattr(storage, "_backend", storage)
    if not isinstance(backend, optuna.storages.RDBStorage):
        for trial_id, key, value in items:
            storage.set_trial_user_attr(trial_id, key, value)
        return
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session, True) as session:
        for trial_id, key, value in items:
            backend._set_trial_attr_without_commit(session, models.TrialUserAttributeModel, trial_id, key, value)


class GroupTracker(TrackedObjective):
    """A :class:`TrackedObjective` whose SIGTERM grace expiry abandons every trial of the running group."""

    def __init__(self, objective: Any, shutdown: Shutdown, max_retry: int) -> None:
        super().__init__(objective, shutdown, max_retry)
        self.group: list[optuna.Trial] = []

    def abandon(self, study: optuna.Study, reason: str) -> bool:
        abandoned = False
        for trial in list(self.group):
            self.current = trial
            abandoned = super().abandon(study, reason) or abandoned
        self.current = None
        return abandoned


class _GroupHeartbeat:
    """Beats for every trial of a group from one thread (Optuna beats only inside ``optimize``)."""

    def __init__(self, study: optuna.Study, trials: Sequence[optuna.Trial]) -> None:
        storage = study._storage
        self.storage = storage if is_heartbeat_enabled(storage) and isinstance(storage, BaseHeartbeat) else None
        self.ids = [t._trial_id for t in trials]
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> _GroupHeartbeat:
        if self.storage is not None:
            self._beat()
            self.thread = threading.Thread(target=self._run, name="skipsearch-group-heartbeat", daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()

    def _beat(self) -> None:
        assert self.storage is not None
        for trial_id in self.ids:
            try:
                self.storage.record_heartbeat(trial_id)
            except Exception as exc:  # a lost beat is the stale-trial recovery's business, not a crash
                _logger.debug("heartbeat of trial id %d failed: %s", trial_id, exc)

    def _run(self) -> None:
        assert self.storage is not None
        interval = self.storage.get_heartbeat_interval() or 60
        while not self.stop.wait(interval):
            self._beat()


class BatchedRunner:
    """Runs a study's trials K at a time (see the module docstring)."""

    def __init__(self, artifacts: TopologyArtifacts, tracker: GroupTracker, batch: int | str) -> None:
        objective = artifacts.objective
        assert isinstance(objective, Objective)
        self.objective = objective
        self.artifacts = artifacts
        self.tracker = tracker
        self.batch = batch
        self._size: int | None = None

    def size(self) -> int:
        """The group size: the configured K, or for ``auto`` one sized from the device's memory."""
        if self._size is None:
            if isinstance(self.batch, int):
                self._size = self.batch
            else:
                config = self.objective.train_config
                self._size = auto_batch_size(self.objective.space.backbone, config, resolve_device(config.device))
                _logger.info("execution.batch_trials auto: %d trials per group", self._size)
        return self._size

    def optimize(
        self,
        study: optuna.Study,
        *,
        n_trials: int | None,
        timeout: float | None,
        callbacks: Sequence[Callback],
        room: Callable[[], int],
    ) -> None:
        """Like ``study.optimize``: groups until ``n_trials`` trials, ``timeout`` seconds, ``study.stop()``
        (a callback's), or ``room()`` (trials the study still wants) reaching zero."""
        deadline = None if timeout is None else time.monotonic() + timeout
        done = 0
        study._thread_local.in_optimize_loop = True  # lets StopAtTarget call study.stop() from a callback
        study._stop_flag = False
        try:
            while not study._stop_flag:
                if deadline is not None and time.monotonic() >= deadline:
                    break
                k = min(self.size(), room())
                if n_trials is not None:
                    k = min(k, n_trials - done)
                if k <= 0:
                    break
                done += self.run_group(study, k, callbacks, room)
        finally:
            study._thread_local.in_optimize_loop = False
            study._stop_flag = False

    # -- one group ------------------------------------------------------------------------------
    def run_group(self, study: optuna.Study, k: int, callbacks: Sequence[Callback], room: Callable[[], int]) -> int:
        """Asks up to ``k`` trials, evaluates them together and tells each; returns how many were told.

        ``room()`` is asked again before each trial after the first: another worker may have asked
        trials meanwhile, and a group must not take the study past its target.
        """
        started = time.perf_counter()
        members = [_Member(_BufferedTrial(study.ask()))]
        while len(members) < k and room() > 0:
            members.append(_Member(_BufferedTrial(study.ask())))
        k = len(members)
        self.tracker.group = [m.trial.trial for m in members]
        self.tracker.current = self.tracker.group[0]  # a trial is running: SIGTERM starts the grace timer
        buffered = [m.trial for m in members]
        try:
            with _GroupHeartbeat(study, self.tracker.group):
                for m in members:  # which worker runs them, visible at once
                    m.trial.set_user_attr(WORKER_ATTR, worker_id())
                _write_attrs(study, buffered)
                finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))  # read once per group
                for m in members:
                    self._prepare(m, members, finished)
                share_peers([m.stopper for m in members])
                _write_attrs(study, buffered)
                sampled = time.perf_counter()
                self._train(members)
                trained = time.perf_counter()
                for m in members:
                    self._finish(m, members)
                _write_attrs(study, buffered)
                told = self._tell(study, members, callbacks)
        finally:  # on a lost database the group's trials go stale and are retried by the recovery
            self.tracker.group = []
            self.tracker.current = None
        _logger.info(
            "group of %d trials: sampling %.2f s, training %.2f s, storing %.2f s",
            k,
            sampled - started,
            trained - sampled,
            time.perf_counter() - trained,
        )
        return told

    def _prepare(self, m: _Member, members: list[_Member], finished: list[FrozenTrial]) -> None:
        """Samples and measures one trial as :class:`Objective` does before training."""
        obj = self.objective
        trial = cast(optuna.Trial, m.trial)  # buffers its attributes; the rest is the trial's
        try:
            topology = obj.space.sample(m.trial.trial)
            m.topology = topology
            obj._admit(trial, topology)
            if obj.config.execution.dedupe:
                if (earlier := obj._find_evaluated(finished, topology.hash)) is not None:
                    m.values = obj._reuse(trial, earlier)
                    return
                same = next(
                    (
                        i
                        for i, o in enumerate(members)
                        if o is not m
                        and o.model is not None
                        and o.topology is not None
                        and o.topology.hash == topology.hash
                    ),
                    None,
                )
                if same is not None:  # asked twice in one group: trained once
                    m.leader = same
                    trial.set_user_attr("reused_from", members[same].trial.number)
                    leader = members[same].trial.user_attrs
                    for key in metric_attrs():  # its costs and probes so far; the rest after training
                        if key in leader:
                            trial.set_user_attr(key, leader[key])
                    return
            m.model, m.stopper = obj._prepare(trial, topology, finished)
        except (TrialFailed, optuna.TrialPruned) as exc:  # the reason is recorded already
            m.error = exc
        except Exception as exc:
            if is_connection_error(exc):
                raise
            trial.set_user_attr("failure_reason", f"{type(exc).__name__}: {exc}"[:2000])
            m.error = exc

    def _train(self, members: list[_Member]) -> None:
        obj = self.objective
        todo = [m for m in members if m.model is not None]
        if not todo:
            return
        seed = obj.config.seed
        try:
            results = train_batched(
                [m.model for m in todo],
                obj.data,
                obj.train_config,
                seeds=[seed] * len(todo),
                should_stop=[m.stopper for m in todo],
            )
        except Exception as exc:  # a group that cannot train together trains one at a time
            if is_connection_error(exc):
                raise
            _logger.warning(
                "fused training of %d trials failed (%s: %s); training them one at a time",
                len(todo),
                type(exc).__name__,
                exc,
            )
            results = []
            for m in todo:
                try:
                    assert m.topology is not None
                    m.model = seeded_model(m.topology, seed)
                    results.append(train_model(m.model, obj.data, obj.train_config, seed=seed, should_stop=m.stopper))
                except Exception as one:
                    if is_connection_error(one):
                        raise
                    m.trial.set_user_attr("failure_reason", f"{type(one).__name__}: {one}"[:2000])
                    m.error, m.model = one, None
                    results.append(None)  # type: ignore[arg-type]
        for m, result in zip(todo, results, strict=True):
            if result is not None:
                m.extra["result"] = result

    def _finish(self, m: _Member, members: list[_Member]) -> None:
        """Stores a trained trial's result as :class:`Objective` does after training."""
        if m.decided:
            return
        obj, trial = self.objective, cast(optuna.Trial, m.trial)
        source = members[m.leader] if m.leader is not None else m
        result: TrainResult | None = source.extra.get("result")
        if result is None:  # its training failed; a follower fails with the leader's reason
            if m.error is None:
                reason = source.trial.user_attrs.get("failure_reason") or "its group's training gave no result"
                trial.set_user_attr("failure_reason", reason)
                m.error = TrialFailed(reason)
            return
        try:
            obj._store_result(trial, result)
            if result.status != "diverged" and m.model is not None:
                obj._gradient_flow(trial, m.model, "grad_ratio")
            if result.status == "diverged":
                trial.set_user_attr("failure_reason", result.reason)
                m.error = TrialFailed(result.reason)
            elif result.status == "stopped":
                reason = getattr(source.stopper, "reason", None) or (
                    f"pruned at epoch {result.epochs_run} by the study's pruner"
                )
                trial.set_user_attr("stop_reason", reason)
                m.error = optuna.TrialPruned(reason)
            else:
                obj._constrain(trial, trial.user_attrs)
                m.values = obj._values(trial.user_attrs)
        except Exception as exc:
            if is_connection_error(exc):
                raise
            trial.set_user_attr("failure_reason", f"{type(exc).__name__}: {exc}"[:2000])
            m.error = exc

    def _tell(self, study: optuna.Study, members: list[_Member], callbacks: Sequence[Callback]) -> int:
        told = 0
        for m in members:
            trial = m.trial.trial
            if m.error is None or isinstance(m.error, (optuna.TrialPruned, TrialFailed)):
                self.artifacts.upload(trial)
            try:
                if m.error is None:
                    frozen = study.tell(trial, m.values)
                elif isinstance(m.error, optuna.TrialPruned):
                    frozen = study.tell(trial, state=TrialState.PRUNED)
                else:
                    _logger.warning("Trial %d failed: %s", trial.number, m.error)
                    frozen = study.tell(trial, state=TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                _logger.warning("trial %d was finished meanwhile (failed as stale?); going on", trial.number)
                continue
            told += 1
            self.tracker.current = trial
            for callback in callbacks:
                callback(study, frozen)
            self.tracker.group = [t for t in self.tracker.group if t is not trial]
        self.tracker.current = None
        return told
