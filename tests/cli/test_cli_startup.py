"""Commands that only read a database or a topology start without loading torch."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_cli_does_not_load_torch() -> None:
    code = "import sys, skipsearch.cli; print(sorted(m for m in ('torch', 'torch_geometric') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"
