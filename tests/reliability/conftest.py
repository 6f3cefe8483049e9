"""Fixtures of the reliability suite (real processes, the real PostgreSQL where configured)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_helpers import Processes


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Starts worker processes whose output goes to files in ``tmp_path``; kills leftovers after the test."""
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.close()
