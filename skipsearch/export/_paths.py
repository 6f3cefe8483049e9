"""Where export writes: the ``--output`` rule and file names that cannot leave it.

Two rules keep every write inside the folder the user named:

* a *relative* ``--output`` must stay inside the current directory once resolved (``../../x`` and a
  relative symbolic link to elsewhere are refused); an absolute path is taken as the user's explicit
  choice;
* every file is written through :class:`OutputDir`, which takes plain names only (no separators, no
  ``..``), derives them from user-controlled text (study and topology names) with :func:`slug`, and
  refuses a target that resolves outside the folder (a planted symbolic link).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from skipsearch.errors import FieldError, UserError

_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")
_MAX_STEM = 80


def slug(name: str, fallback: str = "topology") -> str:
    """``name`` as a file stem that is also a Python identifier's tail: ``../../etc`` -> ``etc``."""
    text = _UNSAFE.sub("_", name).strip("_")[:_MAX_STEM].strip("_")
    return text or fallback


def resolve_output(output: str | Path, cwd: Path | None = None) -> Path:
    """The resolved ``--output`` folder; :class:`UserError` when a relative path climbs out of ``cwd``."""
    raw = Path(output).expanduser()
    base = (cwd or Path.cwd()).resolve()
    resolved = (raw if raw.is_absolute() else base / raw).resolve()
    if not raw.is_absolute() and not resolved.is_relative_to(base):
        raise FieldError(
            "output",
            repr(str(output)),
            "a relative output folder must stay inside the current directory "
            "(it resolves outside it); give an absolute path to write elsewhere",
        )
    if resolved.exists() and not resolved.is_dir():
        raise FieldError("output", repr(str(output)), "exists and is not a folder")
    return resolved


class OutputDir:
    """A folder that hands out paths for plain file names, never one outside itself."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FieldError("output", repr(str(root)), f"cannot create the folder ({exc.strerror})") from None

    def path(self, *names: str) -> Path:
        """``root/names...`` after checking each name and where the result really points."""
        for name in names:
            if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
                raise UserError(f"refusing to write {name!r}: not a plain file name")
        target = self.root.joinpath(*names)
        if target.is_symlink() or not target.resolve().is_relative_to(self.root):
            raise UserError(f"refusing to write {target}: it is a symbolic link or resolves outside {self.root}")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def subdir(self, name: str) -> OutputDir:
        """A checked sub-folder (for bundles)."""
        return OutputDir(self.path(name))

    def write_text(self, name: str, text: str) -> Path:
        path = self.path(name)
        path.write_text(text, encoding="utf-8")
        return path

    def write_json(self, name: str, data: Any) -> Path:
        return self.write_text(name, json.dumps(data, indent=2) + "\n")
