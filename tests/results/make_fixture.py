"""Writes tests/results/fixtures/<revision>.sqlite: a small results database at the current head revision.

Every schema revision gets one such file, made while it is the newest, and committed;
test_results_migrations.py upgrades each to head and checks that no row is lost or changed. Run it
once after adding a revision (see docs/results-schema.md):

    python tests/results/make_fixture.py
"""

from __future__ import annotations

import random
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from results_helpers import random_record, random_topology

from skipsearch.results import connect, head_revision, record_evaluations
from skipsearch.topology import get_preset

FIXTURES = Path(__file__).parent / "fixtures"


def make_fixture(path: Path) -> None:
    rng = random.Random(2025)
    topologies = [random_topology(rng) for _ in range(5)] + [get_preset("unet-small"), get_preset("resnet20")]
    records = [
        random_record(rng, study, number, rng.choice(topologies))
        for study in ("fixture-a", "fixture-b")
        for number in range(12)
    ]
    engine = connect(f"sqlite:///{path}")
    record_evaluations(engine, records)
    engine.dispose()
    with closing(sqlite3.connect(path)) as conn:  # one self-contained file, no -wal/-shm beside it
        conn.execute("PRAGMA journal_mode = DELETE")


if __name__ == "__main__":
    target = FIXTURES / f"{head_revision()}.sqlite"
    if target.exists():
        sys.exit(f"{target} exists: a fixture is made once, when its revision is the newest")
    FIXTURES.mkdir(exist_ok=True)
    make_fixture(target)
    print(f"wrote {target}")
