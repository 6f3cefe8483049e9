"""The exception types the CLI shows as a single line with exit code 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from a user (a file, a flag, a URL). The message names what and where."""


class FieldError(UserError):
    """Bad input in one named field of a call: ``where``, ``storage``, ``study``, ``rank``, ...

    The message reads ``FIELD VALUE: what is wrong`` (``VALUE`` only where one was given, as the
    user wrote it). Layers below the CLI name their parameters, never a command-line flag; the CLI
    shows the field as the flag that set it (:meth:`render` with the flag's name).
    """

    def __init__(self, field: str, value: str | None, detail: str) -> None:
        self.field, self.value, self.detail = field, value, detail
        super().__init__(self.render())

    def render(self, name: str | None = None) -> str:
        """The message with the field called ``name`` (default: the field's own name)."""
        head = name or self.field
        return f"{head} {self.value}: {self.detail}" if self.value is not None else f"{head}: {self.detail}"
