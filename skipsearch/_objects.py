"""Finding a user's Python object from a ``"package.module:attribute"`` reference."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from skipsearch.errors import UserError


def load_object(reference: str, *, where: str, search_dirs: Sequence[str | Path] = ()) -> Any:
    """The object that ``reference`` (``"pkg.module:attribute"``, the attribute may be dotted) names.

    ``search_dirs`` (then the working directory) are tried before the installed packages, as
    ``python -m`` would, so a module next to a study file imports without installing it. Any failure
    is a :class:`UserError` that starts with ``where`` (the flag or key the reference came from).
    """
    module_name, colon, attribute = reference.partition(":")
    if not colon or not module_name or not attribute:
        raise UserError(f"{where}: {reference!r} must be 'package.module:attribute'")
    added = [str(Path(d).resolve()) for d in (*search_dirs, Path.cwd())]
    added = [d for d in dict.fromkeys(added) if d not in sys.path]
    sys.path[:0] = added
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"{where}: cannot import module {module_name!r}: {exc}") from None
    except Exception as exc:  # the user's module itself raised while importing
        raise UserError(f"{where}: importing {module_name!r} raised {type(exc).__name__}: {_one_line(exc)}") from None
    finally:
        for d in added:
            sys.path.remove(d)
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise UserError(f"{where}: module {module_name!r} has no attribute {attribute!r}")
        value = getattr(value, part)
    return value


def call_user(function: Any, *, where: str, **kwargs: Any) -> Any:
    """``function(**kwargs)``; whatever it raises becomes one :class:`UserError` line."""
    if not callable(function):
        raise UserError(f"{where}: {type(function).__name__} object is not callable")
    try:
        return function(**kwargs)
    except Exception as exc:
        raise UserError(f"{where}: raised {type(exc).__name__}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or "(no message)"
