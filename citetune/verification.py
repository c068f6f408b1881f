"""Whether a DOI an answer cites is real, and whether it is the work the claim needs.

Every DOI is looked up with the match backend (the local index or Crossref, through the same cache
and limits), so "fabricated" means what a reader means: the DOI names no work at all. A DOI that
names a work is right when it is a gold work or the same work under another DOI (the published
version of an arXiv paper, or the reverse), wrong otherwise; and its line is mismatched when the
title the answer printed is not the record's.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from citetune.answers import Cited
from citetune.errors import StageError
from citetune.ids import find_arxiv
from citetune.matching.crossref import LookupFailed
from citetune.matching.records import (
    record_authors,
    record_bib,
    record_title,
    record_year,
)
from citetune.matching.validation import PrintedReference, title_agreement, validate

log = logging.getLogger(__name__)

STATUSES = ("right", "wrong", "verified", "fabricated", "unverified")


@dataclass
class Verdict:
    doi: str
    status: str  # one of STATUSES; verified: real, with no gold to compare; unverified: the backend could not answer
    title_agrees: bool | None  # the printed title is the record's (None: no title printed or no record)
    gold: str = ""  # the gold DOI this one stands for, when right
    title: str = ""  # the record's title and year, for display
    year: int | None = None


def _as_printed(rec: dict) -> PrintedReference:
    """A record seen as a reference printing its own fields: to ask validate whether two records agree."""
    return PrintedReference(raw=record_bib(rec), authors=record_authors(rec), title=record_title(rec),
                            year=record_year(rec))


# Relations that make two DOIs one work; 'references', 'has-review', 'is-part-of' ... do not.
SAME_WORK_RELATIONS = {"has-preprint", "is-preprint-of", "has-version", "is-version-of", "is-identical-to"}


def library_record(work: dict) -> dict:
    """A library work (works.jsonl) as a minimal Crossref-format record."""
    year = str(work.get("year") or "")
    return {"DOI": work["doi"], "title": [work["title"]],
            **({"issued": {"date-parts": [[int(year)]]}} if year.isdigit() else {})}


class Verifier:
    """Looks DOIs up once each (answers repeat them) and judges them against a claim's gold DOIs.

    `library`: the verified works (works.jsonl): match has already looked them up, so when the backend
    cannot answer for one of them (Crossref holds no arXiv DOI) its record is the library's."""

    def __init__(self, backend, match_params, library: list[dict] = ()):
        self.backend, self.params = backend, match_params
        self.library = {w["doi"].lower(): library_record(w) for w in library}
        self._records: dict[str, dict | None] = {}
        self._failed: dict[str, LookupFailed] = {}

    @classmethod
    def from_params(cls, match_params, cache_path: str | Path, index_dir: str | Path, offline: bool = False,
                    library: list[dict] = ()) -> "Verifier":
        """The match stage's backend (match params), with a cache of its own (`cache_path`)."""
        from citetune.answer_cache import AnswerCache
        from citetune.matching import make_backend

        Path(index_dir).mkdir(parents=True, exist_ok=True)
        AnswerCache(cache_path)  # created whichever backend runs: a stage may declare it as an output
        mailto = match_params.mailto or os.environ.get("CROSSREF_MAILTO", "")
        try:
            backend = make_backend(match_params, cache_path, mailto, index_dir, offline=offline)
        except (FileNotFoundError, ValueError) as e:
            raise StageError(f"{e}: the DOIs of answers are verified with the match backend; "
                             "check match.records") from e
        return cls(backend, match_params, library)

    def raise_if_stopped(self) -> None:
        """StageError when the backend stopped asking (Crossref wanted a longer pause than
        match.max_retry_after_seconds): the DOIs it could not look up would be scored as unverified,
        so the stage writes nothing; what it did look up stays in its cache for the next run."""
        stopped = self.backend.stopped
        if stopped:
            raise StageError(f"{stopped}; the DOIs not looked up would count as unverified, so nothing is written "
                             "(the answers looked up are cached): run the stage again later")

    def record(self, doi: str) -> dict | None:
        """The DOI's record, None when it names no work; LookupFailed when neither backend nor library can tell."""
        doi = doi.lower()
        if doi in self._failed:
            raise self._failed[doi]
        if doi not in self._records:
            try:
                if find_arxiv(doi) and not self.backend.holds_arxiv:
                    raise LookupFailed(f"{doi}: Crossref does not hold arXiv DOIs")
                self._records[doi] = self.backend.lookup(doi)
            except LookupFailed as e:
                if doi not in self.library:
                    self._failed[doi] = e
                    raise
                self._records[doi] = self.library[doi]
        return self._records[doi]

    def same_work(self, doi: str, rec: dict, gold: str) -> bool:
        """A preprint and its published version are one work: related so in the record, or (when exactly
        one of the DOIs is arXiv's) title, first author and year agree as match's validation asks."""
        related = {str(r.get("id", "")).lower() for kind, rel in (rec.get("relation") or {}).items()
                   if kind in SAME_WORK_RELATIONS and isinstance(rel, list) for r in rel if isinstance(r, dict)}
        if gold in related:
            return True
        if bool(find_arxiv(doi)) == bool(find_arxiv(gold)):  # two arXiv papers are never one work
            return False
        try:
            gold_rec = self.record(gold)
        except LookupFailed:
            return False
        return gold_rec is not None and validate(_as_printed(gold_rec), rec, self.params).accepted

    def unglued(self, doi: str) -> str:
        """The library DOI a cited string starts with when text was glued after it ('…03762and', '…03762-'):
        what follows cannot continue that DOI (a letter after its final digit, or punctuation)."""
        for end in range(len(doi) - 1, 0, -1):  # the longest library DOI first
            known, rest = doi[:end], doi[end:]
            if known in self.library and ((known[-1].isdigit() and rest[0].isalpha()) or not rest[0].isalnum()):
                return known
        return ""

    def verify(self, cited: Cited, gold: list[str] | None = None) -> Verdict:
        """The verdict on one cited DOI; without gold DOIs (a user's question) only whether it is real."""
        if cited.doi not in self.library and (known := self.unglued(cited.doi)):
            cited = Cited(known, cited.title)
        try:
            rec = self.record(cited.doi)
        except LookupFailed as e:
            log.warning("could not verify %s: %s", cited.doi, e)
            # A gold DOI was verified by match: right, whatever the backend says today.
            right = gold is not None and cited.doi in gold
            return Verdict(cited.doi, "right" if right else "unverified", None, cited.doi if right else "")
        if rec is None:
            return Verdict(cited.doi, "fabricated", None)
        agrees = None
        if cited.title:
            score, differing = title_agreement(PrintedReference(raw=cited.title, title=cited.title), rec,
                                               self.params.min_title_similarity)
            agrees = score >= self.params.min_title_similarity and not differing
        shown = {"title": record_title(rec), "year": record_year(rec)}
        if gold is None:
            return Verdict(cited.doi, "verified", agrees, **shown)
        if cited.doi in gold:
            return Verdict(cited.doi, "right", agrees, cited.doi, **shown)
        same = next((g for g in gold if self.same_work(cited.doi, rec, g)), "")
        return Verdict(cited.doi, "right" if same else "wrong", agrees, same, **shown)
