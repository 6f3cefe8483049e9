"""Layers below the CLI speak in field names; only skipsearch/cli names command-line flags.

Their errors are :class:`~skipsearch.errors.FieldError`s naming a field (``where``, ``storage``,
``rank``); the CLI shows each as its flag.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from skipsearch.cli import flag_of
from skipsearch.errors import FieldError
from skipsearch.results import parse_where

PACKAGE = Path(__file__).resolve().parents[2] / "skipsearch"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants, f-string parts included; docstrings (of modules, classes, functions and
    attributes: every bare string statement) left out."""
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_no_module_outside_the_cli_names_a_flag() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "cli" in path.relative_to(PACKAGE).parts:
            continue
        for line, text in _strings(ast.parse(path.read_text())):
            found += [f"{path.relative_to(PACKAGE)}:{line}: {flag}" for flag in FLAG.findall(text)]
    assert found == []


def test_field_errors_name_the_field_and_the_cli_shows_its_flag() -> None:
    with pytest.raises(FieldError) as exc:
        parse_where("accuracy > high")
    assert exc.value.field == "where" and str(exc.value).startswith("where 'accuracy > high': ")
    assert exc.value.render(flag_of("where")).startswith("--where 'accuracy > high': ")
    assert flag_of("storage") == "--storage" and flag_of("n_trials") == "--n-trials"
