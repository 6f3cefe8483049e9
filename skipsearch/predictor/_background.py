"""Fitting the predictor in a child process while this one trains the trials the last fit picked.

A predictor fit is about as long as training a group of small models, and both are one thread of
Python dispatch: in two threads they share the GIL and take as long as one after the other (on a
2-core machine, a 2 s fit beside a 2.3 s group took 4.0 s against 4.2 s in turn). A child process
runs the fit on the second core instead. It is started once (importing torch costs seconds) and
fits one thing at a time; its result is only read back when the sampler asks for it, so which fit
a pick uses depends on the order of the trials, never on timing.

The child is a fresh Python running :func:`serve`, talking pickles over its stdin and
stdout, not a ``multiprocessing`` spawn: a spawned child re-imports the parent's main script, and
a study run from a script without an ``if __name__ == "__main__"`` guard would run again in it.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import subprocess
import sys
import weakref
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from skipsearch.predictor._train import FitConfig, Predictor, fit_predictor
from skipsearch.topology import Topology

_logger = logging.getLogger("skipsearch.predictor")

FitInputs = tuple[list[Topology], np.ndarray, list[str], FitConfig, np.ndarray | None, tuple[str, ...]]
"""The arguments of :func:`fit_predictor`: topologies, targets, output names, config, features, their names."""


class BackgroundFit:
    """One predictor fit at a time in a child process, keyed by what it was fitted on."""

    def __init__(self) -> None:
        self._child: _Child | None = None
        self.pending: frozenset[int] | None = None
        """The trial numbers the running fit is on (None when no fit runs)."""

    def warm_up(self) -> None:
        """Starts the child now (during the random warm-up trials), so its imports are paid by then."""
        if self._child is None:
            self._child = _Child()
            weakref.finalize(self, self._child.close)

    def submit(self, key: frozenset[int], inputs: FitInputs) -> bool:
        """Starts fitting ``inputs``; False (logged) when the child cannot take it."""
        try:
            self.warm_up()
            assert self._child is not None
            self._child.requests.send_bytes(pickle.dumps(inputs))
        except (OSError, ValueError) as exc:
            _logger.warning("background predictor fit unavailable (%s); fitting in this process", exc)
            return False
        self.pending = key
        return True

    def result(self) -> tuple[frozenset[int], Predictor] | None:
        """Waits for the running fit: its key and predictor, or None (logged) when the child failed."""
        assert self._child is not None and self.pending is not None
        key, self.pending = self.pending, None
        try:
            status, payload = pickle.loads(self._child.replies.recv_bytes())
        except (EOFError, OSError) as exc:
            status, payload = "error", f"the fitting process ended ({type(exc).__name__})"
        if status != "ok":
            _logger.warning("background predictor fit failed (%s); fitting in this process", payload)
            return None
        return key, payload


class _Child:
    """The fitting process and the two pipes to it."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", f"from {__name__} import serve; serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.requests = Connection(os.dup(self.process.stdin.fileno()), readable=False)
        self.replies = Connection(os.dup(self.process.stdout.fileno()), writable=False)
        self.process.stdin.close()
        self.process.stdout.close()

    def close(self) -> None:
        self.requests.close()  # the child reads end-of-file and exits
        self.replies.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def serve() -> None:
    """The child: fits what arrives on stdin, one at a time, and answers on stdout until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    import torch

    requests = Connection(os.dup(0), writable=False)
    replies = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)  # anything printed goes to stderr, never into the replies
    torch.set_num_threads(1)  # as the sampler's own fits: the same numbers in either process
    while True:
        try:
            inputs: FitInputs = pickle.loads(requests.recv_bytes())
        except EOFError:
            return
        reply: tuple[str, Any]
        try:
            reply = ("ok", fit_predictor(*inputs))
        except Exception as exc:  # reported to the sampler, which fits in its own process instead
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            replies.send_bytes(pickle.dumps(reply))
        except OSError:  # the parent is gone (it exited mid-fit): nobody to answer
            return
