"""What matching asks of a backend, the local index and Crossref's API alike."""

from __future__ import annotations

from typing import Protocol


class MatchBackend(Protocol):
    holds_arxiv: bool  # whether DataCite's arXiv DOIs (10.48550/arXiv.<id>) can be looked up
    stopped: str  # why the backend stopped asking its service ('' while it asks; a local index never stops)

    def lookup(self, doi: str) -> dict | None:
        """The record of a DOI, or None when there is none. Raises LookupFailed when it cannot tell."""

    def search(self, text: str, rows: int) -> list[dict]:
        """Up to `rows` records that look like a reference string, best first."""

    def concurrency(self) -> int:
        """References worth matching at a time (requests the service lets be in flight)."""

    def describe(self) -> str:
        """One line for the log: what answers, from where, within which limits."""

    def activity(self) -> dict[str, int | str]:
        """Figures of the work done so far, for the progress bar and the closing log line ({} if none)."""
