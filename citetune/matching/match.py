"""Match each unique reference to its DOI and verify it before accepting it.

Two interchangeable backends answer the same two questions — "the record of this DOI" and
"records that look like this reference" — a local SQLite index of Crossref-format records
(`local.py`) and Crossref's REST API through habanero (`crossref.py`). The algorithm is Crossref's
own search-based matching with validation: references are deduplicated across papers first; a
DOI printed in a reference is checked against the record it names, not trusted; an arXiv id gives
DataCite's DOI 10.48550/arXiv.<id> (or, with prefer_published, the published version's DOI when one
validates); otherwise the whole reference string is searched and each candidate is validated
against the printed title, year, first author (or, without a printed title, volume and first page;
or, where the parse went wrong, all of them and the venue found in the raw string) by `validate`, one rule for every backend, so a look-alike never becomes a DOI.
Every decision is recorded: method, score, the candidate's title, year and authors, and why it was rejected.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from citetune.columns import CITATION_COLUMNS, MATCH_COLUMNS
from citetune.ids import arxiv_doi, find_arxiv, is_arxiv_id, is_doi
from citetune.matching.backend import MatchBackend
from citetune.matching.crossref import CrossrefBackend, LookupFailed
from citetune.matching.local import LocalIndex, default_index_path, remove_stale_indexes
from citetune.matching.records import record_authors, record_title, record_year
from citetune.matching.validation import PrintedReference, Verdict, ref_key, validate

log = logging.getLogger(__name__)

REFERENCE_COLUMNS = [
    "ref_key", "ref_raw", "ref_authors", "ref_title", "ref_year", "ref_doi", "ref_arxiv", "n_citations",
    "doi", "match_method", "match_score", "match_status", "match_title", "match_year", "match_authors",
    "candidate_doi", "match_note",
]
METHODS = ("printed_doi", "arxiv_id", "published_version", "search")
STATUSES = ("matched", "rejected", "not_found", "error")


# --- per reference ----------------------------------------------------------------------------

@dataclass
class Match:
    status: str = "not_found"
    doi: str = ""
    method: str = "none"
    score: float = 0.0
    title: str = ""  # the accepted record's, or the best rejected candidate's
    year: str = ""
    authors: str = ""
    candidate: str = ""  # the best rejected candidate's DOI
    note: str = ""


def _describe(rec: Mapping) -> tuple[str, str, str]:
    return record_title(rec), str(record_year(rec) or ""), "; ".join(record_authors(rec)[:3])


def _accept(rec: Mapping, method: str, verdict: Verdict, notes: list[str]) -> Match:
    note = "; ".join([*notes, verdict.note] if verdict.note else notes)
    return Match("matched", str(rec["DOI"]), method, verdict.score, *_describe(rec), note=note)


class _Attempt:
    """One reference's way through the steps of matching, and what each step noted, failed or rejected."""

    def __init__(self, ref: PrintedReference, backend: MatchBackend, params):
        self.ref, self.backend, self.params = ref, backend, params
        self.notes: list[str] = []
        self.errors: list[str] = []
        self.rejected: list[tuple[Verdict, Mapping]] = []
        self.candidates: list[dict] | None = None  # the search's answer, asked for once
        self.printed_doi_unknown = False  # a well-formed printed DOI the backend does not hold

    def fetch(self, doi: str, what: str) -> dict | None:
        try:
            rec = self.backend.lookup(doi)
        except LookupFailed as e:
            self.errors.append(f"{what} {doi}: {e}")
            return None
        if rec is None:
            self.notes.append(f"{what} {doi} not found")
        return rec

    def search(self) -> list[dict]:
        if self.candidates is None:
            try:
                self.candidates = self.backend.search(self.ref.raw, self.params.rows)
            except LookupFailed as e:
                self.errors.append(f"search: {e}")
                self.candidates = []
        return self.candidates

    def identified(self, doi: str, what: str, method: str) -> Match | None:
        """The work a printed identifier names, if it is this reference's work."""
        rec = self.fetch(doi, what)
        if rec is None:
            return None
        verdict = validate(self.ref, rec, self.params, identifier_agrees=True)
        if verdict.accepted:
            return _accept(rec, method, verdict, self.notes)
        self.rejected.append((verdict, rec))
        self.notes.append(f"{what} {doi} is another work ({verdict.note})")
        return None

    def by_printed_doi(self) -> Match | None:
        """A printed DOI: fetched and checked against the reference, not trusted."""
        ref = self.ref
        if ref.doi and not is_doi(ref.doi):
            self.notes.append(f"printed DOI {ref.doi!r} is not a well-formed DOI, not looked up")
            return None
        if ref.doi and (self.backend.holds_arxiv or not find_arxiv(ref.doi)):
            found = self.identified(ref.doi, "printed DOI", "printed_doi")
            self.printed_doi_unknown = (found is None and not self.rejected and not self.errors
                                        and not find_arxiv(ref.doi))  # an arXiv DOI: by_arxiv_id's
            return found
        return None

    def by_arxiv_id(self) -> Match | None:
        """A printed arXiv id: DataCite's DOI, or the published version's when asked and found."""
        ref = self.ref
        if not ref.arxiv:
            return None
        if not is_arxiv_id(ref.arxiv):
            self.notes.append(f"printed arXiv id {ref.arxiv!r} is not an arXiv id, not used")
            return None
        doi = arxiv_doi(ref.arxiv)
        if self.params.prefer_published:
            journal = [c for c in self.search() if not find_arxiv(str(c.get("DOI", "")))]
            published = _best(ref, journal, self.params, set())
            if published is not None:
                return _accept(published[1], "published_version", published[0],
                               self.notes + [f"published version of arXiv:{ref.arxiv}"])
        if not self.backend.holds_arxiv:
            self.notes.append("DOI built from the printed arXiv id, not checked: Crossref does not hold arXiv DOIs")
            return Match("matched", doi, "arxiv_id", 100.0, ref.title, str(ref.year or ""),
                         "; ".join(ref.authors[:3]), note="; ".join(self.notes))
        return self.identified(doi, "arXiv DOI", "arxiv_id")

    def by_search(self) -> Match | None:
        """A bibliographic search of the whole string: the best candidate that passes validation."""
        ref, params = self.ref, self.params
        candidates = self.search()
        if params.min_relevance:
            # Crossref's relevance score grows with the query's length: normalised by it, as Crossref does.
            weak = [c for c in candidates
                    if c.get("score") is not None and c["score"] / len(ref.raw) < params.min_relevance]
            if weak:
                self.notes.append(f"{len(weak)} candidate(s) below relevance {params.min_relevance:g}")
            candidates = [c for c in candidates if c not in weak]
        known = {d.lower() for d in (ref.doi, arxiv_doi(ref.arxiv) if is_arxiv_id(ref.arxiv) else "") if d}
        # A printed DOI the backend does not hold still names the work's registrant: a record under
        # another prefix is another version (the preprint of a journal article), not the one cited,
        # unless its volume and first page are printed too (then the printed DOI has a typo).
        prefix = ref.doi.lower().split("/", 1)[0] + "/" if self.printed_doi_unknown else ""
        best = _best(ref, candidates, params, known, self.rejected, prefix)
        return _accept(best[1], "search", best[0], self.notes) if best is not None else None

    def no_match(self) -> Match:
        """Why nothing was accepted: errors first, else the best rejected candidate, else nothing found."""
        if self.errors:
            return Match("error", note="; ".join(self.errors + self.notes))
        if self.rejected:
            verdict, rec = max(self.rejected, key=lambda r: r[0].score)
            return Match("rejected", "", "none", verdict.score, *_describe(rec), candidate=str(rec.get("DOI", "")),
                         note="; ".join(self.notes + [f"best candidate {rec.get('DOI')} ({verdict.score:g}): "
                                                      f"{verdict.note}"]))
        return Match(note="; ".join(self.notes + ["no candidate found"]))


def match_reference(ref: PrintedReference, backend: MatchBackend, params) -> Match:
    """printed DOI, then printed arXiv id, then a bibliographic search; every candidate validated."""
    if not ref.raw:
        return Match(note="empty reference text")
    attempt = _Attempt(ref, backend, params)
    return attempt.by_printed_doi() or attempt.by_arxiv_id() or attempt.by_search() or attempt.no_match()


def _best(ref: PrintedReference, candidates: list[dict], params, known: set[str],
          rejected: list | None = None, prefix: str = "") -> tuple[Verdict, dict] | None:
    """The candidate that validates with the highest score (under `prefix`, when given); the others go
    to `rejected`."""
    best = None
    for rec in candidates:
        doi = str(rec.get("DOI", "")).lower()
        verdict = validate(ref, rec, params, identifier_agrees=doi in known)
        if verdict.accepted and not verdict.venue and not doi.startswith(prefix):
            verdict = Verdict(False, verdict.score, f"not under the printed DOI's prefix {prefix[:-1]}; {verdict.note}")
        # Of two that agree (a preprint and its journal version), the one whose volume and pages are printed.
        if verdict.accepted and (best is None or (verdict.venue, verdict.score) > (best[0].venue, best[0].score)):
            best = (verdict, rec)
        elif not verdict.accepted and rejected is not None and doi not in known:
            rejected.append((verdict, rec))
    return best


# --- the stage's work ---------------------------------------------------------------------------

def make_backend(params, cache_path: str | Path = "data/cache/crossref.sqlite", mailto: str | None = None,
                 index_dir: str | Path = "data/cache/index", offline: bool = False, **crossref_kw) -> MatchBackend:
    """The backend params ask for: a LocalIndex over params.records (built or brought up to date)
    or a CrossrefBackend."""
    if params.backend == "local":
        remove_stale_indexes(index_dir)
        index = LocalIndex.build(default_index_path(params.records, index_dir), params.records)
        if not len(index):
            why = "".join(f"\n  {reason}" for reason in index.unreadable.values())
            unreadable = f" ({len(index.unreadable)} file(s) could not be read:{why})" if why else ""
            raise ValueError(f"{params.records} holds no Crossref records with a DOI{unreadable}")
        return index
    limits = {"search": (params.search_rate, params.search_concurrency),
              "lookup": (params.lookup_rate, params.lookup_concurrency)}
    limits = {k: v for k, v in limits.items() if v[0] and v[1]}
    return CrossrefBackend(params.api_url, mailto, params.timeout_seconds, cache_path, offline=offline,
                           max_attempts=params.max_attempts, backoff_seconds=params.backoff_seconds,
                           max_wait_seconds=params.max_retry_after_seconds, limits=limits or None, **crossref_kw)


def match_citations(citations: pd.DataFrame, backend: MatchBackend, params, progress: bool = True):
    """Match every unique reference once; returns (references, citations with match columns, metrics)."""
    if "ref_raw" not in citations.columns:
        raise ValueError(f"citations table has no ref_raw column (columns: {', '.join(citations.columns)})")
    citations = citations.drop(columns=[c for c in ["ref_key", *MATCH_COLUMNS] if c in citations.columns]).fillna("")
    for col in CITATION_COLUMNS:
        if col not in citations.columns:
            citations[col] = ""
    citations["ref_key"] = citations["ref_raw"].map(ref_key)
    first = citations.drop_duplicates("ref_key").to_dict("records")
    counts = citations["ref_key"].value_counts()

    def one(row: dict) -> Match:
        try:
            return match_reference(PrintedReference.from_row(row), backend, params)
        except Exception as e:  # one odd reference never sinks the stage
            log.exception("reference %s failed", row["ref_key"])
            return Match("error", note=f"unexpected {type(e).__name__}: {e}")

    started, matches = time.monotonic(), []
    with ThreadPoolExecutor(max_workers=backend.concurrency()) as pool, \
            tqdm(total=len(first), desc="match", unit="ref", disable=not progress) as bar:
        for m in pool.map(one, first):
            matches.append(m)
            bar.update(1)
            if activity := backend.activity():
                if "requests" in activity:
                    activity["per_s"] = f"{int(activity['requests']) / max(1e-9, time.monotonic() - started):.1f}"
                bar.set_postfix(activity)
    rows = [{**{k: row[k] for k in REFERENCE_COLUMNS[:7]}, "n_citations": int(counts[row["ref_key"]]),
             "doi": m.doi, "match_method": m.method, "match_score": m.score, "match_status": m.status,
             "match_title": m.title, "match_year": m.year, "match_authors": m.authors, "candidate_doi": m.candidate,
             "match_note": m.note} for row, m in zip(first, matches, strict=True)]
    references = pd.DataFrame(rows, columns=REFERENCE_COLUMNS)

    by_key = references.set_index("ref_key")[MATCH_COLUMNS]
    out = citations.join(by_key, on="ref_key")
    out = out[[c for c in citations.columns if c not in MATCH_COLUMNS] + MATCH_COLUMNS]
    return references, out, match_metrics(references, out)


def match_metrics(references: pd.DataFrame, citations: pd.DataFrame) -> dict:
    status = references["match_status"].value_counts()
    matched = references[references["match_status"] == "matched"]
    n = len(references)
    return {
        "references": n,
        "by_status": {s: int(status.get(s, 0)) for s in STATUSES},
        "by_method": {m: int((matched["match_method"] == m).sum()) for m in METHODS},
        "matched": int(status.get("matched", 0)),
        "match_rate": round(int(status.get("matched", 0)) / n, 4) if n else 0.0,
        "citations": len(citations),
        "citations_with_doi": int((citations["doi"].fillna("") != "").sum()),
    }


def score_distribution(references: pd.DataFrame, width: int = 10) -> list[dict]:
    """Validation scores of accepted and rejected candidates, counted in bins: a DVC plot."""
    rows = []
    scores = pd.to_numeric(references["match_score"], errors="coerce").fillna(0)
    for lo in range(0, 100, width):
        hi = lo + width
        inside = (scores >= lo) & ((scores < hi) | (hi == 100) & (scores <= 100))
        rows.append({"score": f"{lo}-{hi}",
                     "accepted": int((inside & (references["match_status"] == "matched")).sum()),
                     "rejected": int((inside & (references["match_status"] == "rejected")).sum())})
    return rows
