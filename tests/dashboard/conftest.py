"""A small finished study (tiny MLP, 1 epoch, 3 trials) and an optuna-dashboard serving it."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from dashboard_helpers import TINY, Dashboard, FinishedStudy
from study_helpers import run_study


@pytest.fixture(scope="session")
def finished_study(tmp_path_factory: pytest.TempPathFactory) -> FinishedStudy:
    folder = tmp_path_factory.mktemp("dashboard-study")
    url = f"sqlite:///{folder / 'study.db'}"
    study = run_study(url, TINY)
    return FinishedStudy(url, study.study_name, folder)


@pytest.fixture(scope="module")
def dashboard(finished_study: FinishedStudy) -> Iterator[Dashboard]:
    """``skipsearch dashboard`` as a real process on a free port of 127.0.0.1; killed at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "skipsearch", "dashboard", "--storage", finished_study.url, "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    seen: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        base = None
        while base is None:
            line = lines.get(timeout=120)  # cold imports on a busy 2-core machine take a while
            if line is None:
                pytest.fail(f"the dashboard exited with {proc.wait()}: {''.join(seen)}")
            seen.append(line)
            if match := re.search(r"listening on (http://127\.0\.0\.1:\d+)/dashboard", line):
                base = match.group(1)
        yield Dashboard(base, finished_study, seen)
    finally:
        proc.kill()
        proc.wait(timeout=30)
