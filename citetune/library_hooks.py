"""The error an adapter raises when the library it reaches into no longer has that internal."""

from __future__ import annotations

from citetune.errors import StageError


class HookMissing(StageError):
    """A library internal an adapter relies on is gone or changed: an upgrade past the checked range."""

    def __init__(self, library: str, version: str, checked: str, what: str, adapter: str):
        super().__init__(f"{library} {version}: {what}. {adapter} relies on it and was checked with {library} "
                         f"{checked}; install a version in the range pyproject.toml pins, or update {adapter}")
