"""Options shared by several commands."""

from __future__ import annotations

from typing import Annotated

import typer

DEFAULT_STORAGE = "sqlite:///skipsearch.db"
"""The embedded default: an SQLite file in the working directory."""

StorageOption = Annotated[
    str,
    typer.Option("--storage", envvar="SKIPSEARCH_STORAGE", help="Database URL of the Optuna storage and results."),
]
