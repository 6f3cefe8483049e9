"""Options shared by several commands."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

DEFAULT_STORAGE = "sqlite:///skipsearch.db"


def finite(value: float | None) -> float | None:
    """Option callback: click's FloatRange lets ``nan`` through every bound, and ``inf`` through a minimum."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"must be a finite number, got {value}")
    return value


"""The embedded default: an SQLite file in the working directory."""


def _normalise_storage(url: str) -> str:
    """``postgres://`` and ``postgresql://`` URLs use the psycopg driver skipsearch installs."""
    from skipsearch.db import normalise_url

    return normalise_url(url)


StorageOption = Annotated[
    str,
    typer.Option(
        "--storage",
        envvar="SKIPSEARCH_STORAGE",
        callback=_normalise_storage,
        help="Database URL of the Optuna storage and results (sqlite:///FILE.db, postgresql://USER@HOST/DB).",
    ),
]


def connect(url: str, *, existing: bool = False) -> Engine:
    """:func:`skipsearch.results.connect`, imported on first use: the results package (pandas,
    SQLAlchemy, Optuna) costs a second of start-up that commands like ``describe`` do not need."""
    from skipsearch.results import connect as open_results

    return open_results(url, existing=existing)
