"""Study names: what every storage can hold, checked where a name enters (study file, command line).

Optuna accepts any string, but PostgreSQL refuses NUL characters and the results schema holds study
names in bounded columns; a name outside these rules would pass validation on SQLite and fail
mid-way on PostgreSQL. New studies take the study file's rule; an existing study is looked up by
any name a storage could hold.
"""

from __future__ import annotations

import re

from skipsearch.errors import FieldError

MAX_STUDY_NAME = 200
"""Longest name of a new study (``evaluations.study`` and Optuna's ``study_name`` hold 512)."""

STUDY_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
"""Letters, digits, ``_``, ``.`` and ``-``: one rule for the study file's ``name`` and the command line."""

_NAME = re.compile(STUDY_NAME_PATTERN)


def check_new_study_name(name: str, field: str = "study") -> str:
    """Refuses a name a new study may not take, in one line naming ``field``."""
    if len(name) > MAX_STUDY_NAME:
        raise FieldError(field, None, f"a study name has at most {MAX_STUDY_NAME} characters, got {len(name)}")
    if not _NAME.fullmatch(name):
        shown = name if len(name) <= 40 else name[:40] + "..."
        raise FieldError(field, None, f"a study name takes letters, digits, '_', '.' and '-' only, got {shown!r}")
    return name


def check_study_lookup(name: str, field: str = "study") -> str:
    """Refuses a name no storage can hold (so no query is sent with it)."""
    if "\x00" in name or len(name) > 512:
        raise FieldError(field, None, f"no study can be named {name[:40]!r}... (NUL characters, over 512 characters)")
    return name
