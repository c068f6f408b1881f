"""Whether a DOI an answer cites is real, and whether it is the work the claim needs.

Every DOI is looked up with the match backend (the local index or Crossref, through the same cache
and limits), so "fabricated" means what a reader means: the DOI names no work at all. A DOI that
names a work is right when it is a gold work or the same work under another DOI (the published
version of an arXiv paper, or the reverse), wrong otherwise; and its line is mismatched when the
title the answer printed is not the record's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from citetune.answers import Cited
from citetune.ids import find_arxiv
from citetune.matching.crossref import LookupFailed
from citetune.matching.records import record_authors, record_bib, record_title, record_year
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


class Verifier:
    """Looks DOIs up once each (answers repeat them) and judges them against a claim's gold DOIs."""

    def __init__(self, backend, match_params):
        self.backend, self.params = backend, match_params
        self._records: dict[str, dict | None] = {}

    def record(self, doi: str) -> dict | None:
        doi = doi.lower()
        if doi not in self._records:
            if find_arxiv(doi) and not self.backend.holds_arxiv:
                raise LookupFailed(f"{doi}: Crossref does not hold arXiv DOIs")
            self._records[doi] = self.backend.lookup(doi)
        return self._records[doi]

    def same_work(self, doi: str, rec: dict, gold: str) -> bool:
        """A preprint and its published version are one work: related in the record, or (when one of the
        DOIs is arXiv's) title, first author and year agree as match's validation asks."""
        related = {str(r.get("id", "")).lower() for rel in (rec.get("relation") or {}).values()
                   if isinstance(rel, list) for r in rel if isinstance(r, dict)}
        if gold in related:
            return True
        if not (find_arxiv(doi) or find_arxiv(gold)):
            return False
        try:
            gold_rec = self.record(gold)
        except LookupFailed:
            return False
        return gold_rec is not None and validate(_as_printed(gold_rec), rec, self.params).accepted

    def verify(self, cited: Cited, gold: list[str] | None = None) -> Verdict:
        """The verdict on one cited DOI; without gold DOIs (a user's question) only whether it is real."""
        try:
            rec = self.record(cited.doi)
        except LookupFailed as e:
            log.warning("could not verify %s: %s", cited.doi, e)
            return Verdict(cited.doi, "unverified", None)
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
