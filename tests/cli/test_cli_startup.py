"""Commands that only read a database or a topology start without loading torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # each test imports the CLI in a new interpreter


def test_importing_the_cli_does_not_load_torch() -> None:
    code = "import sys, skipsearch.cli; print(sorted(m for m in ('torch', 'torch_geometric') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_importing_the_cli_does_not_load_optuna_or_the_results_package() -> None:
    """``describe`` pays for torch only: Optuna, pandas and the results package wait for a command
    that reads a database."""
    code = (
        "import sys, skipsearch.cli; "
        "print(sorted(m for m in ('optuna', 'pandas', 'skipsearch.results', 'torch._dynamo') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"
