"""Workers killed with SIGKILL, stopped with SIGTERM, and a study whose workers all died."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from optuna.trial import FrozenTrial, TrialState
from reliability_helpers import SLOW, Processes, assert_nothing_lost, create, no_traceback, output, skipsearch_command
from reliability_helpers import trials as stored_trials

from skipsearch.search import INTERRUPTED_ATTR, WORKER_ATTR

pytestmark = [pytest.mark.reliability, pytest.mark.slow, pytest.mark.postgres]


def _running_victim(url: str, study: str, pids: set[int], min_age: float = 0.5) -> tuple[int, int] | None:
    """(pid, trial number) of a trial one of ``pids`` has been running for at least ``min_age`` s."""
    for trial in stored_trials(url, study):
        if trial.state != TrialState.RUNNING or WORKER_ATTR not in trial.user_attrs:
            continue
        pid = int(trial.user_attrs[WORKER_ATTR].rsplit(":", 1)[1])
        started = trial.datetime_start.timestamp() if trial.datetime_start else time.time()
        if pid in pids and time.time() - started >= min_age:
            return pid, trial.number
    return None


def test_kill_9_mid_trial_five_times(postgres_url: str, processes: Processes) -> None:
    """3 workers; 5 times one is killed in mid-trial and restarted (as compose's restart policy does)."""
    target, kills = 8, 5
    started = time.monotonic()
    name = create(postgres_url, {**SLOW, "trials": target})
    workers = {p.pid: p for p in (processes.worker(postgres_url, name) for _ in range(3))}
    killed: dict[int, dict] = {}
    kill_times: dict[int, float] = {}
    deadline = time.monotonic() + 150
    while len(killed) < kills and time.monotonic() < deadline:
        victim = _running_victim(postgres_url, name, {pid for pid, p in workers.items() if p.poll() is None})
        if victim is None:
            time.sleep(0.2)
            continue
        pid, number = victim
        os.kill(pid, signal.SIGKILL)
        workers.pop(pid).wait()
        killed[number] = next(t.params for t in stored_trials(postgres_url, name) if t.number == number)
        kill_times[number] = time.time()
        restarted = processes.worker(postgres_url, name)
        workers[restarted.pid] = restarted
    assert len(killed) == kills, f"only {len(killed)} kills landed mid-trial"
    codes = processes.wait(list(workers.values()), timeout=200)
    assert codes == [0] * len(codes), [output(p)[-2000:] for p in workers.values()]
    stored = assert_nothing_lost(postgres_url, name, target)
    by_number = {t.number: t for t in stored}
    for number, params in killed.items():
        if by_number[number].state == TrialState.COMPLETE:
            continue  # the kill landed after Optuna stored the result: nothing to retry
        assert by_number[number].state == TrialState.FAIL
        retries = [t for t in stored if number in t.system_attrs.get("retry_history", [])]
        assert retries, f"killed trial {number} was not retried"
        assert all(t.params == params for t in retries)
        assert any(t.state == TrialState.COMPLETE for t in retries)
    for proc in workers.values():
        assert no_traceback(output(proc))
    # Time to recover: from the kill to the start of the first retry.
    retried = [n for n in killed if by_number[n].state == TrialState.FAIL]
    recover = [
        min(t.datetime_start.timestamp() for t in stored if n in t.system_attrs.get("retry_history", []))
        - kill_times[n]
        for n in retried
    ] or [0.0]
    figures = {
        "kills": kills,
        "trials": len(stored),
        "lost": sum(1 for n in retried if not any(n in t.system_attrs.get("retry_history", []) for t in stored)),
        "recover_s_median": round(sorted(recover)[len(recover) // 2], 1),
        "recover_s_max": round(max(recover), 1),
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(figures))


def test_recover_after_every_worker_died(postgres_url: str, processes: Processes) -> None:
    name = create(postgres_url, {**SLOW, "trials": 4})
    workers = [processes.worker(postgres_url, name) for _ in range(2)]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # both mid-trial
        running = [t for t in stored_trials(postgres_url, name) if t.state == TrialState.RUNNING]
        if len(running) == 2:
            break
        time.sleep(0.2)
    for proc in workers:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    stale = {t.number for t in stored_trials(postgres_url, name) if t.state == TrialState.RUNNING}
    assert stale
    started = time.monotonic()
    recover = processes.start([*skipsearch_command(), "recover", "--study", name], {"SKIPSEARCH_STORAGE": postgres_url})
    assert processes.wait([recover], timeout=60) == [0], output(recover)
    recovery_seconds = time.monotonic() - started
    after = {t.number: t for t in stored_trials(postgres_url, name)}
    assert not [n for n, t in after.items() if t.state == TrialState.RUNNING]
    for number in stale:
        assert after[number].state == TrialState.FAIL
        retry = [t for t in after.values() if t.system_attrs.get("retry_history", [None])[-1] == number]
        assert len(retry) == 1 and retry[0].state == TrialState.WAITING and retry[0].params == after[number].params
    assert f"{len(stale)} stale trial(s) failed" in output(recover)
    # A new worker picks up the re-queued trials and the study completes.
    final = processes.worker(postgres_url, name)
    assert processes.wait([final], timeout=150) == [0], output(final)
    assert_nothing_lost(postgres_url, name, 4)
    print(json.dumps({"recover_seconds": round(recovery_seconds, 1), "stale": len(stale)}))


def _sigterm_mid_trial(
    url: str, name: str, processes: Processes, *worker_args: str
) -> tuple[subprocess.Popen[bytes], int, dict[int, FrozenTrial]]:
    """Starts a worker, sends it SIGTERM once a trial has run a moment, and waits for its exit code 0.
    Returns the worker, the number of the trial it was running and the stored trials by number."""
    proc = processes.worker(url, name, *worker_args)
    victim = None
    while victim is None and proc.poll() is None:
        victim = _running_victim(url, name, {proc.pid}, min_age=0.3)
        time.sleep(0.1)
    assert victim is not None, output(proc)
    proc.send_signal(signal.SIGTERM)
    assert processes.wait([proc], timeout=60) == [0], output(proc)
    return proc, victim[1], {t.number: t for t in stored_trials(url, name)}


def test_sigterm_lets_the_trial_finish_then_exits_0(postgres_url: str, processes: Processes) -> None:
    name = create(postgres_url, {**SLOW, "trials": 20})
    proc, victim, stored = _sigterm_mid_trial(postgres_url, name, processes)
    assert stored[victim].state == TrialState.COMPLETE  # the running trial finished
    assert not [t for t in stored.values() if t.state == TrialState.RUNNING]
    assert max(stored) == victim  # and no new one started
    assert no_traceback(output(proc))


def test_sigterm_after_the_grace_period_fails_and_requeues(postgres_url: str, processes: Processes) -> None:
    name = create(postgres_url, {**SLOW, "trials": 20})
    proc, victim, stored = _sigterm_mid_trial(postgres_url, name, processes, "--stop-grace", "0.2")
    interrupted = stored[victim]
    assert interrupted.state == TrialState.FAIL and "SIGTERM" in interrupted.user_attrs[INTERRUPTED_ATTR]
    retry = [t for t in stored.values() if t.system_attrs.get("retry_history", [None])[-1] == victim]
    assert len(retry) == 1 and retry[0].state == TrialState.WAITING and retry[0].params == interrupted.params
    assert not [t for t in stored.values() if t.state == TrialState.RUNNING]
    assert no_traceback(output(proc))
