"""Studies' validated configurations, kept next to their results (table ``study_configs``).

The search writes a study's configuration (its JSON form) when it creates or updates the study;
readers below the search (export, analysis) take objectives from it (:func:`config_objectives`) and
the training recipe (:meth:`skipsearch.tasks.Recipe.from_study_config`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from skipsearch.db import sqlite_writer
from skipsearch.results._labels import TASK_METRICS
from skipsearch.results._models import StudyConfigRow


def save_study_config(engine: Engine, study: str, config: dict[str, Any]) -> None:
    """Stores (or replaces) the configuration of ``study``."""
    row = {"study": study, "config": json.dumps(config, sort_keys=True), "updated_at": _now()}
    with sqlite_writer(engine).begin() as conn:
        conn.execute(sa.delete(StudyConfigRow).where(StudyConfigRow.study == study))
        conn.execute(sa.insert(StudyConfigRow), [row])


OPTUNA_CONFIG_ATTR = "skipsearch_config"
"""The Optuna study attribute where the search also keeps the configuration (and kept it alone
before revision 0004)."""


def study_config(engine: Engine, study: str) -> dict[str, Any] | None:
    """The stored configuration of ``study`` (JSON form); ``None`` for results without one.

    A study that reached the storage some other way than the search's ``create_study`` (a copy
    made with Optuna's own tools) has it in Optuna's study attributes only: it is read from there.
    """
    with engine.connect() as conn:
        text = conn.execute(sa.select(StudyConfigRow.config).where(StudyConfigRow.study == study)).scalar()
        if text is None and {"studies", "study_user_attributes"} <= set(sa.inspect(conn).get_table_names()):
            text = conn.execute(
                sa.text(
                    "SELECT a.value_json FROM studies s JOIN study_user_attributes a ON a.study_id = s.study_id "
                    "WHERE s.study_name = :study AND a.key = :key"
                ),
                {"study": study, "key": OPTUNA_CONFIG_ATTR},
            ).scalar()
    return json.loads(text) if text is not None else None


def config_objectives(config: dict[str, Any]) -> list[tuple[str, str]]:
    """A configuration's objectives as ``(column, "max" | "min")``: the task's metric is stored in
    the ``accuracy`` column whatever its name."""
    return [
        ("accuracy" if o["name"] in TASK_METRICS else o["name"], "max" if o["direction"] == "maximize" else "min")
        for o in config["objectives"]
    ]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
