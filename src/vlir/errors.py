"""The one error type vlir raises for things a user can fix.

Anything raised as :class:`VlirError` is a message meant for a person: the CLI
prints it on one line and exits non-zero instead of showing a traceback.
Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class VlirError(Exception):
    """A user-facing failure: bad input, a refused overwrite, a bad option."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} ({hint})")

    def one_line(self) -> str:
        """The message as the CLI prints it: a single line, never a traceback."""
        text = str(self)
        return " ".join(text.split())
