"""Running the real ``skipsearch`` entry point in this process, as the console script does."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Callable, Sequence

Invoke = Callable[[Sequence[str]], tuple[int, str, str]]


def invoke(args: Sequence[str]) -> tuple[int, str, str]:
    """``skipsearch ARGS`` through ``skipsearch.cli.main``: returns (exit code, stdout, stderr).

    Any exception other than SystemExit propagates and fails the test: for a user it would be a
    traceback. A plain function, not a fixture, so that hypothesis tests can call it too.
    """
    from skipsearch.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["skipsearch", *args]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()
