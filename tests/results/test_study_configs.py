"""Studies' validated configurations in skipsearch's own table: written by the search, read by
export (objectives, training recipe) without the search package or Optuna's tables."""

from __future__ import annotations

import ast
from pathlib import Path

import optuna
import sqlalchemy as sa
from alembic import command
from study_helpers import tiny_study

from skipsearch.results import (
    config_objectives,
    connect,
    delete_study_rows,
    rename_study_rows,
    save_study_config,
    study_config,
)
from skipsearch.results._schema import alembic_config
from skipsearch.search import create_study, parse_study_config
from skipsearch.tasks import Recipe

PACKAGE = Path(__file__).resolve().parents[2] / "skipsearch"


def _config(**changes: object) -> dict:
    data = tiny_study("cfg", objectives=["accuracy:max", "macs:min", "latency_ms:min"], seed=7, **changes)
    return parse_study_config(data, "cfg.yaml").model_dump(mode="json")


def test_objectives_and_recipe_come_from_the_stored_json() -> None:
    dumped = _config(training={"epochs": 2, "lr": 0.01})
    config = parse_study_config(tiny_study("cfg", training={"epochs": 2, "lr": 0.01}, seed=7), "cfg.yaml")
    assert config_objectives(dumped) == [("accuracy", "max"), ("macs", "min"), ("latency_ms", "min")]
    recipe = Recipe.from_study_config(dumped)
    assert recipe == Recipe("mnist1d", config.train_config, 7, {})
    assert Recipe.from_study_config(dumped, seed=3).seed == 3


def test_create_study_stores_the_configuration_and_it_follows_renames(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    config = parse_study_config(tiny_study("stored", trials=2), "stored.yaml")
    create_study(config, url)
    engine = connect(url)
    assert study_config(engine, "stored") == config.model_dump(mode="json")
    create_study(config.model_copy(update={"trials": 5}), url)  # a new target: the stored copy follows
    assert study_config(engine, "stored")["trials"] == 5
    rename_study_rows(engine, "stored", "renamed")  # as the dashboard does when it renames the study
    assert study_config(engine, "renamed")["trials"] == 5
    delete_study_rows(engine, "renamed")
    assert study_config(engine, "renamed") is None


def test_the_migration_copies_configurations_from_optuna(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    dumped = _config()
    old = optuna.create_study(storage=url, study_name="old")
    old.set_user_attr("skipsearch_config", dumped)  # where skipsearch kept it before revision 0004
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0002")
    engine.dispose()
    upgraded = connect(url)
    assert study_config(upgraded, "old") == dumped
    save_study_config(upgraded, "old", {**dumped, "trials": 9})
    assert study_config(upgraded, "old")["trials"] == 9
    copied = optuna.create_study(storage=url, study_name="copied")  # e.g. optuna.copy_study, after 0004
    copied.set_user_attr("skipsearch_config", dumped)
    assert study_config(upgraded, "copied") == dumped


def _imports(package: str) -> dict[Path, list[str]]:
    found = {}
    for path in sorted((PACKAGE / package).glob("*.py")):
        names = []
        for node in ast.walk(ast.parse(path.read_text())):
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        found[path] = names
    return found


def test_export_imports_neither_search_nor_optuna_and_analysis_no_search() -> None:
    for path, names in _imports("export").items():
        assert not any(n.startswith(("skipsearch.search", "optuna")) for n in names), path
    for path, names in _imports("analysis").items():
        assert not any(n.startswith("skipsearch.search") for n in names), path
