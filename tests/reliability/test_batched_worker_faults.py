"""A worker training a group of trials (``execution.batch_trials``) killed with SIGKILL mid-group."""

from __future__ import annotations

import os
import signal
import time

import pytest
from optuna.trial import TrialState
from reliability_helpers import SLOW, Processes, assert_nothing_lost, create, no_traceback, output
from reliability_helpers import trials as stored_trials

from skipsearch.search import INTERRUPTED_ATTR, WORKER_ATTR

pytestmark = [pytest.mark.reliability, pytest.mark.slow, pytest.mark.postgres]

BATCHED = {**SLOW, "name": "batched", "execution": {**SLOW["execution"], "batch_trials": 3}}


def test_kill_9_mid_group_retries_each_of_its_trials(postgres_url: str, processes: Processes) -> None:
    target = 6
    name = create(postgres_url, {**BATCHED, "trials": target})
    victim = processes.worker(postgres_url, name)
    group = _group_running(postgres_url, name, victim.pid)  # the whole group asked and training
    assert len(group) == 3, output(victim)[-2000:]
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    killed = {t.number: t.params for t in group}

    rescuer = processes.worker(postgres_url, name)
    assert processes.wait([rescuer], timeout=240) == [0], output(rescuer)[-2000:]
    stored = assert_nothing_lost(postgres_url, name, target)
    for number, params in killed.items():
        assert next(t for t in stored if t.number == number).state == TrialState.FAIL
        retries = [t for t in stored if number in t.system_attrs.get("retry_history", [])]
        assert retries and all(t.params == params for t in retries), f"killed trial {number} was not retried"
        assert any(t.state == TrialState.COMPLETE for t in retries)
    assert no_traceback(output(rescuer))


def _group_running(url: str, name: str, pid: int) -> list:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        group = [
            t
            for t in stored_trials(url, name)
            if t.state == TrialState.RUNNING and t.user_attrs.get(WORKER_ATTR, "").endswith(f":{pid}")
        ]
        if len(group) == 3 and all("flops" in t.user_attrs for t in group):
            return group
        time.sleep(0.2)
    return []


def test_sigterm_past_the_grace_period_fails_and_requeues_the_whole_group(
    postgres_url: str, processes: Processes
) -> None:
    name = create(postgres_url, {**BATCHED, "trials": 20})
    proc = processes.worker(postgres_url, name, "--stop-grace", "0.2")
    group = _group_running(postgres_url, name, proc.pid)
    assert len(group) == 3, output(proc)[-2000:]
    os.kill(proc.pid, signal.SIGTERM)
    assert processes.wait([proc], timeout=60) == [0], output(proc)[-2000:]
    stored = {t.number: t for t in stored_trials(postgres_url, name)}
    for trial in group:
        interrupted = stored[trial.number]
        assert interrupted.state == TrialState.FAIL and "SIGTERM" in interrupted.user_attrs[INTERRUPTED_ATTR]
        retry = [t for t in stored.values() if t.system_attrs.get("retry_history", [None])[-1] == trial.number]
        assert len(retry) == 1 and retry[0].state == TrialState.WAITING and retry[0].params == interrupted.params
    assert not [t for t in stored.values() if t.state == TrialState.RUNNING]
    assert no_traceback(output(proc))
