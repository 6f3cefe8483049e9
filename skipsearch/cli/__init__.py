"""The ``skipsearch`` command line (Typer). Sub-commands live in one module per area."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from typer.exceptions import TyperException

from skipsearch.cli import (
    _analyze,
    _dashboard,
    _export,
    _import,
    _predictor,
    _results,
    _study,
    _tasks,
    _topology,
    _train,
)
from skipsearch.errors import FieldError, UserError

app = typer.Typer(
    name="skipsearch",
    help="Architecture search and analysis for skip-connection topologies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_topology.register(app)
_train.register(app)
_study.register(app)
_results.register(app)
_analyze.register(app)
_export.register(app)
_dashboard.register(app)
_predictor.register(app)
_import.register(app)
_tasks.register(app)


def _unwrap_help(typer_app: typer.Typer) -> None:
    """Help texts come from docstrings wrapped at the source's line length; rich would print those
    line breaks mid-sentence. Each paragraph becomes one line (blank lines still separate them)."""
    import inspect

    for info in typer_app.registered_commands:
        text = info.help or inspect.getdoc(info.callback) or ""
        info.help = "\n\n".join(" ".join(p.split()) for p in text.split("\n\n"))
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _unwrap_help(group.typer_instance)


_unwrap_help(app)


def main() -> None:
    """Entry point: bad input becomes one line on stderr and exit code 2, never a traceback."""
    try:
        code = app(standalone_mode=False)
    except FieldError as exc:
        _fail(exc.render(flag_of(exc.field)))
    except UserError as exc:
        _fail(str(exc))
    except typer.Abort:  # click turns EOF on a prompt, or Ctrl-C, into Abort
        _fail("aborted", 130)
    except TyperException as exc:  # click's usage errors: unknown option, bad value, ...
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if not message:  # no arguments at all: help was printed
            sys.exit(0)
        _fail(message, getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except OSError as exc:  # an output folder that is read-only or full, a path through a file, ...
        _fail(os_error_text(exc))
    sys.exit(code if isinstance(code, int) else 0)


def os_error_text(exc: OSError) -> str:
    """``PATH: cannot write or read it (Permission denied)``: the file and the system's reason."""
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return f"cannot read or write a file ({reason})"
    return f"{exc.filename}: cannot read or write it ({reason})"


FLAGS: dict[str, str] = {"knee": "--pick knee", "path": "--plot"}
"""Fields of lower layers' errors whose flag is not ``--`` plus the field's name."""


def flag_of(field: str) -> str:
    """The command-line flag that sets the parameter ``field`` (``storage`` -> ``--storage``)."""
    return FLAGS.get(field, f"--{field.replace('_', '-')}")


def _fail(message: str, code: int = 2) -> NoReturn:
    # One line whatever the input held: control characters of a user's value (a path with a
    # carriage return, a newline) are shown escaped.
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    print(f"error: {shown}", file=sys.stderr)
    sys.exit(code)
