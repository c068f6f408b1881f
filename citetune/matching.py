"""Match each unique reference to its DOI and verify it before accepting it.

Two interchangeable backends answer the same two questions — "the record of this DOI" and
"records that look like this reference" — a local index of Crossref-format records and the
Crossref REST API through habanero. Every candidate, whatever its origin, passes the same
`validate` (title, year, first author; or, for references that print no title, first
author, year and an identifier or volume/first page), so a look-alike never becomes a DOI.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import logging
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from functools import cached_property
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process
from tenacity import Retrying, retry_if_exception, stop_after_attempt
from tqdm import tqdm

from citetune.columns import CITATION_COLUMNS, MATCH_COLUMNS
from citetune.ids import split_version
from citetune.io import write_json

log = logging.getLogger(__name__)

REFERENCE_COLUMNS = [
    "ref_key", "ref_raw", "ref_authors", "ref_title", "ref_year", "ref_doi", "ref_arxiv", "n_citations",
    "doi", "match_method", "match_score", "match_status", "match_title", "match_year", "match_note",
]
METHODS = ("printed_doi", "arxiv_id", "search")
STATUSES = ("matched", "unmatched", "rejected", "error")

# --- text -----------------------------------------------------------------------------------

# Letters that NFKD does not split into base letter + accent; Greek letters spelled out ("β-VAE" = "beta-VAE").
_FOLD = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ı": "i", "ß": "ss",
                       "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "þ": "th", "ð": "d"}
                      | {chr(c): unicodedata.name(chr(c)).split()[-1].lower() for c in range(0x391, 0x3CA)
                         if unicodedata.name(chr(c), "").startswith("GREEK")})
_TAG = re.compile(r"<[^>]+>")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def fold(text: str) -> str:
    """Lower case without accents: 'Müller' and 'Muller' compare equal."""
    text = unicodedata.normalize("NFKD", str(text)).translate(_FOLD)
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


def norm_text(text: str) -> str:
    """Folded, tags (Crossref titles carry <i>, <sub>, MathML), entities and punctuation removed, spaces collapsed."""
    return _NON_ALNUM.sub(" ", fold(html.unescape(_TAG.sub(" ", str(text or ""))))).strip()


def ref_key(ref_raw: str) -> str:
    """Stable key of a reference: the same text (up to case, accents, punctuation) gives the same key."""
    return hashlib.sha1(norm_text(ref_raw).encode()).hexdigest()[:16]


# --- identifiers and years printed in a reference -----------------------------------------------

DOI_RE = re.compile(r"10\.\d{4,9}/[^\s\"<>]+", re.I)
ARXIV_RE = re.compile(
    r"arxiv(?:\.org/(?:abs|pdf)/|\s*:\s*|\.)\s*([a-z\-]+(?:\.[a-z]{2})?/\d{7}|\d{4}\.\d{4,5})(v\d+)?", re.I)
URL_RE = re.compile(r"(?:https?://|www\.)\S+|doi:\s*\S+", re.I)
YEAR_RE = re.compile(r"(?<![\w.])(1[89]\d\d|20\d\d)[a-z]?(?!\w|\.\d)")
PAREN_YEAR_RE = re.compile(r"\((1[89]\d\d|20\d\d)[a-z]?\)")


def clean_doi(text: str) -> str:
    """'https://doi.org/10.1/ABC.' -> '10.1/ABC'; '' when there is no DOI."""
    m = DOI_RE.search(str(text or ""))
    if not m:
        return ""
    doi = m.group(0).rstrip(".,;:")
    # A closing bracket belongs to the DOI only if the DOI opened it: "(see 10.1/x)".
    while doi.endswith(")") and doi.count(")") > doi.count("("):
        doi = doi[:-1].rstrip(".,;:")
    return doi


def arxiv_from(text: str) -> str:
    """The arXiv id (no version) printed in a text or an arXiv DOI, or ''."""
    m = ARXIV_RE.search(str(text or ""))
    return m.group(1) if m else ""


def arxiv_doi(arxiv_id: str) -> str:
    return f"10.48550/arXiv.{split_version(arxiv_id)[0]}"


def _without_ids(text: str) -> str:
    text = URL_RE.sub(" ", text)
    text = DOI_RE.sub(" ", text)
    return ARXIV_RE.sub(" ", text)


def year_from(text: str) -> int | None:
    text = _without_ids(str(text or ""))
    m = PAREN_YEAR_RE.search(text) or YEAR_RE.search(text)
    return int(m.group(1)) if m else None


# --- references and records -------------------------------------------------------------------

@dataclass
class Reference:
    """What a reference prints; every field falls back on the raw text when the parser left it empty."""

    raw: str
    authors: list[str] = field(default_factory=list)
    title: str = ""
    year: int | None = None
    doi: str = ""
    arxiv: str = ""

    @classmethod
    def from_row(cls, row: Mapping) -> "Reference":
        def get(k: str) -> str:
            v = row.get(k)
            return "" if v is None or (isinstance(v, float) and v != v) else str(v).strip()  # None or NaN

        raw = get("ref_raw")
        doi = clean_doi(get("ref_doi")) or clean_doi(raw)
        arxiv = split_version(get("ref_arxiv"))[0] if get("ref_arxiv") else ""
        arxiv = arxiv or arxiv_from(doi) or arxiv_from(raw)
        year_m = YEAR_RE.search(get("ref_year"))
        return cls(
            raw=raw,
            authors=[a.strip() for a in get("ref_authors").split(";") if a.strip()],
            title=get("ref_title"),
            year=int(year_m.group(1)) if year_m else year_from(raw),
            doi=doi,
            arxiv=arxiv,
        )

    @cached_property
    def segments(self) -> list[str]:
        """Runs of 1-3 consecutive sentence-like pieces of the raw text: one of them is the title, if printed."""
        pieces = [norm_text(p) for p in re.split(r"(?<=[.?!])\s+|[“”\"«»]", _without_ids(self.raw))]
        pieces = [p for p in pieces if p]
        return [" ".join(pieces[i:j]) for i in range(len(pieces)) for j in range(i + 1, min(i + 4, len(pieces) + 1))]

    @cached_property
    def first_author_tokens(self) -> list[str]:
        """Normalised words that name the first author: the raw text up to the first author separator."""
        head = re.split(r",|;|\band\b|&|\bet al\b", self.raw, maxsplit=1)[0]
        return norm_text(head).split()[:8]

    @cached_property
    def numbers(self) -> set[str]:
        return set(norm_text(_without_ids(self.raw)).split())


def record_titles(rec: Mapping) -> list[str]:
    """The record's title, and title + subtitle: references print either."""
    title = rec.get("title") or [""]
    title = title[0] if isinstance(title, list) else str(title)
    subtitle = rec.get("subtitle") or []
    subtitle = subtitle[0] if isinstance(subtitle, list) and subtitle else ""
    return [t for t in (title, f"{title}: {subtitle}" if subtitle else "") if t]


def record_title(rec: Mapping) -> str:
    titles = record_titles(rec)
    return " ".join(_TAG.sub("", titles[0]).split()) if titles else ""


def record_year(rec: Mapping) -> int | None:
    for k in ("issued", "published", "published-print", "published-online", "created"):
        try:
            year = rec[k]["date-parts"][0][0]
        except (KeyError, IndexError, TypeError):
            continue
        if year:
            return int(year)
    return None


def record_authors(rec: Mapping) -> list[str]:
    authors = rec.get("author") or []
    first = [a for a in authors if a.get("sequence") == "first"]
    ordered = first[:1] + [a for a in authors if a not in first[:1]]
    return [str(a.get("family") or a.get("name") or "").strip() for a in ordered if a.get("family") or a.get("name")]


def record_bib(rec: Mapping) -> str:
    """The record as a reference-like string: what a search compares a raw reference with."""
    parts = record_authors(rec)[:3] + record_titles(rec)[:1]
    parts += [(rec.get("container-title") or [""])[0] if isinstance(rec.get("container-title"), list)
              else str(rec.get("container-title") or "")]
    parts += [str(record_year(rec) or ""), str(rec.get("volume") or ""), str(rec.get("page") or "")]
    return " ".join(p for p in parts if p)


# --- validation -------------------------------------------------------------------------------

PARTICLES = {"van", "von", "der", "den", "de", "del", "della", "di", "da", "dos", "das", "du", "la", "le",
             "ben", "bin", "ibn", "al", "el", "ter", "ten", "zu", "af", "y"}


def surname_variants(name: str) -> set[str]:
    """'Ben Zaken' -> {'ben zaken', 'benzaken', 'zaken'}; 'Allen-Zhu' -> {'allen zhu', 'allenzhu', 'allen', 'zhu'}."""
    toks = norm_text(name).split()
    if not toks:
        return set()
    core = [t for t in toks if t not in PARTICLES] or toks
    return {" ".join(toks), "".join(toks), " ".join(core), "".join(core), core[0], core[-1]}


def author_similarity(ref: Reference, rec: Mapping) -> tuple[float, str]:
    """Best similarity of the record's first-author surname with the reference's first author (0-100)."""
    authors = record_authors(rec)
    if not authors:
        return 0.0, ""
    cand = surname_variants(authors[0])
    printed = surname_variants(ref.authors[0]) if ref.authors else set()
    # The first author's words in the raw text, alone and joined in twos/threes ("ben zaken").
    toks = ref.first_author_tokens
    printed |= {" ".join(toks[i:j]) for i in range(len(toks)) for j in range(i + 1, min(i + 4, len(toks) + 1))}
    printed |= {"".join(toks[i:j]) for i in range(len(toks)) for j in range(i + 2, min(i + 4, len(toks) + 1))}
    best = max((fuzz.ratio(a, b) for a in cand for b in printed), default=0.0)
    return best, authors[0]


# Words whose presence or absence does not make another title; "not", "without", numbers all count.
_TITLE_STOP = {"a", "an", "the", "of", "and", "in", "on", "for", "to", "by", "at", "from", "via", "with", "is",
               "are", "as", "its", "into"}


def _same_word(a: str, b: str) -> bool:
    """Spelling variants ('optimisation', 'models') are the same word; numbers and short words must be equal."""
    if a == b:
        return True
    if min(len(a), len(b)) < 4 or any(c.isdigit() for c in a + b):
        return False
    return fuzz.ratio(a, b) >= 85


def _unexplained(words: list[str], other: list[str]) -> list[str]:
    """Content words of one title the other lacks, after allowing split compounds ('fine tuning' = 'finetuning')."""
    other_joined = set(other) | {"".join(other[i:j]) for i in range(len(other))
                                 for j in range(i + 2, min(i + 4, len(other) + 1))}
    explained = [False] * len(words)
    for i in range(len(words)):
        for j in range(i + 1, min(i + 4, len(words) + 1)):
            if "".join(words[i:j]) in other_joined:
                explained[i:j] = [True] * (j - i)
    return [w for w, ok in zip(words, explained, strict=True)
            if not ok and w not in _TITLE_STOP and not any(_same_word(w, o) for o in other)]


def title_agreement(ref: Reference, rec: Mapping, threshold: float) -> tuple[float, list[str]]:
    """(similarity 0-100, words that differ) of the record's title and the printed title or a title-like
    piece of the raw text. Agreement needs similarity >= threshold and no differing content word: look-alike
    titles ('... with human feedback' / '... without human feedback') are close by characters only."""
    titles = [t for t in (norm_text(t) for t in record_titles(rec)) if t]
    printed = ([norm_text(ref.title)] if ref.title else []) + ref.segments
    best: tuple[float, list[str]] = (0.0, [])
    for p in printed:
        for t in titles:
            sim = fuzz.token_sort_ratio(p, t)
            if sim < threshold:
                if sim > best[0] and not best[1]:
                    best = (sim, [])
                continue
            a, b = p.split(), t.split()
            diff = _unexplained(a, b) + _unexplained(b, a)
            if not diff:
                return sim, []
            if best[0] < threshold or len(diff) < len(best[1]):
                best = (sim, diff)
    return best


def volume_page_agree(ref: Reference, rec: Mapping) -> bool:
    """The record's volume (or, without one, its proceedings' title) and first page are printed in the reference."""
    page = norm_text(re.split(r"[-–]", str(rec.get("page") or rec.get("article-number") or ""))[0])
    if not page or page not in ref.numbers:
        return False
    volume = norm_text(rec.get("volume") or "")
    if volume:
        return volume in ref.numbers
    container = rec.get("container-title") or []
    container = norm_text(container[0] if isinstance(container, list) and container else container)
    return len(container) >= 10 and fuzz.partial_ratio(container, norm_text(ref.raw)) >= 95


@dataclass
class Verdict:
    accepted: bool
    score: float  # 0-100 from the components
    note: str


def validate(ref: Reference, rec: Mapping, params, identifier_agrees: bool = False) -> Verdict:
    """Accept a candidate only if title, year and first author agree (or, without a printed title,
    first author, year and an identifier or volume/first page agree). One rule for every backend."""
    problems = []
    ref_year, rec_year = ref.year, record_year(rec)
    if ref_year is None or rec_year is None:
        year_score = 0.0
        problems.append("no year to compare" if ref_year is None else "record has no year")
    else:
        diff = abs(ref_year - rec_year)
        year_score = 100.0 if diff == 0 else max(0.0, 100.0 - 25.0 * diff)
        if diff > params.year_tolerance:
            problems.append(f"year {rec_year} vs printed {ref_year}")
    author_score, cand_author = author_similarity(ref, rec)
    if author_score < params.min_author_similarity:
        problems.append(f"first author {cand_author or '(none)'!r} not the printed one ({author_score:.0f})")
    title_score, differing = title_agreement(ref, rec, params.min_title_similarity)
    title_ok = title_score >= params.min_title_similarity and not differing
    if title_ok or ref.title or differing:
        how = "" if ref.title or not title_ok else "title found in the reference text"
        score = 0.6 * title_score + 0.25 * author_score + 0.15 * year_score
        if differing:
            problems.append(f"title words differ: {', '.join(differing[:4])}")
        elif not title_ok:
            problems.append(f"title similarity {title_score:.0f} < {params.min_title_similarity:g}")
    else:
        # Physics style prints no title: the identifier or the volume and first page must agree instead.
        if identifier_agrees:
            how = "no title printed: accepted on first author, year and identifier"
        elif volume_page_agree(ref, rec):
            how = "no title printed: accepted on first author, year, volume/venue and first page"
        else:
            how = ""
            problems.append("no title printed and neither identifier nor volume/first page agree")
        score = 0.35 * author_score + 0.15 * year_score + (50.0 if how else 0.0)
    if problems:
        return Verdict(False, round(score, 1), "; ".join(problems))
    return Verdict(True, round(score, 1), how)


# --- local backend ----------------------------------------------------------------------------

_STOP = {"a", "an", "the", "of", "and", "in", "on", "for", "to", "with", "by", "from", "at", "is", "are", "via"}


def _records_in(obj) -> Iterable[dict]:
    """Records from a record, a list, a {'items': [...]} file of a Crossref snapshot or an API response."""
    if isinstance(obj, list):
        for item in obj:
            yield from _records_in(item)
    elif isinstance(obj, dict):
        if "message" in obj:
            yield from _records_in(obj["message"])
        elif isinstance(obj.get("items"), list):
            yield from _records_in(obj["items"])
        else:
            yield obj


def load_records(path: str | Path) -> list[dict]:
    """Crossref-format records from .jsonl/.json (optionally .gz) files, or a folder of them."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"records file {path} not found")
    files = sorted(p for p in path.rglob("*") if re.search(r"\.jsonl?(\.gz)?$", p.name)) if path.is_dir() else [path]
    records, bad = [], 0
    for f in files:
        opener = gzip.open if f.suffix == ".gz" else open
        with opener(f, "rt", encoding="utf-8") as fh:
            if re.search(r"\.jsonl(\.gz)?$", f.name):
                for n, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        records.extend(_records_in(json.loads(line)))
                    except json.JSONDecodeError as e:
                        bad += 1
                        log.warning("%s:%d: skipped, not valid JSON (%s)", f, n, e)
            else:
                try:
                    records.extend(_records_in(json.load(fh)))
                except json.JSONDecodeError as e:
                    bad += 1
                    log.warning("%s: skipped, not valid JSON (%s)", f, e)
    kept = [r for r in records if isinstance(r, dict) and r.get("DOI")]
    if len(kept) < len(records):
        log.warning("%s: %d records without a DOI skipped", path, len(records) - len(kept))
    return kept


class LocalIndex:
    """Crossref-format records in memory: DOI look-up, and a search that blocks on shared rare words
    (surnames, title words, volume, pages) before ranking the block with rapidfuzz."""

    holds_arxiv = True
    block_size = 64

    def __init__(self, records: list[dict]):
        self.records: list[dict] = []
        self.by_doi: dict[str, int] = {}
        for rec in records:
            doi = str(rec["DOI"]).lower()
            if doi not in self.by_doi:
                self.by_doi[doi] = len(self.records)
                self.records.append(rec)
        self.bibs = [norm_text(record_bib(r)) for r in self.records]
        postings: dict[str, list[int]] = {}
        for i, bib in enumerate(self.bibs):
            for tok in set(bib.split()) - _STOP:
                postings.setdefault(tok, []).append(i)
        n = max(len(self.records), 1)
        self.postings = {t: np.asarray(p, dtype=np.int64) for t, p in postings.items()}
        self.idf = {t: float(np.log(1 + n / len(p))) for t, p in postings.items()}

    @classmethod
    def from_file(cls, path: str | Path) -> "LocalIndex":
        return cls(load_records(path))

    def __len__(self) -> int:
        return len(self.records)

    def lookup(self, doi: str) -> dict | None:
        i = self.by_doi.get(doi.strip().lower())
        return None if i is None else self.records[i]

    def search(self, text: str, rows: int) -> list[dict]:
        query = norm_text(_without_ids(text))
        scores = np.zeros(len(self.records))
        for tok in set(query.split()) - _STOP:
            if tok in self.postings:
                scores[self.postings[tok]] += self.idf[tok]
        hits = np.flatnonzero(scores)
        if not len(hits):
            return []
        if len(hits) > self.block_size:
            hits = hits[np.argpartition(-scores[hits], self.block_size)[: self.block_size]]
        # How much of each record's bibliographic string the reference contains, block score breaking ties.
        ranked = process.extract(query, {int(i): self.bibs[i] for i in hits}, scorer=fuzz.token_set_ratio,
                                 limit=None)
        ranked.sort(key=lambda r: (-r[1], -scores[r[2]]))
        return [self.records[r[2]] for r in ranked[:rows]]


# --- Crossref backend -------------------------------------------------------------------------

# Only the fields validation reads: smaller answers, smaller cache.
SEARCH_SELECT = ["DOI", "title", "subtitle", "author", "issued", "published-print", "published-online",
                 "container-title", "volume", "issue", "page", "article-number", "type"]


class LookupFailed(RuntimeError):
    """A Crossref request that failed (after retries, where retrying made sense)."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500


def _retry_after(value: str | None) -> float | None:
    """Retry-After is seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _as_lookup_failed(exc: Exception) -> LookupFailed:
    """habanero raises httpx2.HTTPStatusError, its RequestError, or RuntimeError wrapping a transport error."""
    import httpx2
    from habanero.exceptions import RequestError

    if isinstance(exc, httpx2.HTTPStatusError):
        r = exc.response
        return LookupFailed(f"HTTP {r.status_code} {r.reason_phrase}", r.status_code,
                            _retry_after(r.headers.get("Retry-After")))
    if isinstance(exc, RequestError):
        return LookupFailed(f"HTTP {exc.status_code}: {str(exc.error)[:200]}", int(exc.status_code))
    cause = exc if isinstance(exc, httpx2.TransportError) else exc.__cause__
    if isinstance(cause, httpx2.TransportError):
        return LookupFailed(f"connection failed: {type(cause).__name__}: {cause}")
    return LookupFailed(f"{type(exc).__name__}: {exc}", status=0)


class CrossrefBackend:
    """The Crossref REST API through habanero: polite pool, retries with backoff that honour
    Retry-After, and an on-disk cache of every answer so that a rerun repeats no request."""

    holds_arxiv = False  # arXiv DOIs are DataCite's; Crossref answers 404 for them

    def __init__(self, api_url: str, mailto: str | None, timeout: float, cache_dir: str | Path,
                 max_attempts: int = 5, backoff_seconds: float = 2.0, max_wait_seconds: float = 120.0,
                 min_interval_seconds: float = 0.1):
        from habanero import Crossref

        self.api_url = api_url.rstrip("/")
        self.client = Crossref(base_url=self.api_url, mailto=mailto or None, timeout=timeout,
                               ua_string="citetune")
        self.cache_dir = Path(cache_dir)
        self.max_attempts, self.backoff, self.max_wait = max_attempts, backoff_seconds, max_wait_seconds
        self.min_interval = min_interval_seconds
        self.requests = 0  # made over the network (cache misses), for logs and tests
        self.cache_hits = 0
        # The stage logs at INFO; one line per HTTP request from httpx2 would drown the progress bar.
        for name in ("httpx2", "httpcore2"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._last = 0.0

    def lookup(self, doi: str) -> dict | None:
        answer = self._cached({"kind": "work", "doi": doi.lower()}, lambda: self._work(doi))
        return answer["message"] if answer["found"] else None

    def search(self, text: str, rows: int) -> list[dict]:
        def call():
            res = self.client.works(query_bibliographic=text, limit=rows, select=SEARCH_SELECT)
            return {"found": True, "message": (res.get("message") or {}).get("items") or []}

        return self._cached({"kind": "search", "query": text, "rows": rows, "select": SEARCH_SELECT}, call)["message"]

    def _work(self, doi: str) -> dict:
        try:
            # DOIs may hold '?', '#', '<', ';' (SICI): percent-encode them into the path.
            return {"found": True, "message": self.client.works(ids=quote(doi, safe="/:;()._-"))["message"]}
        except Exception as e:
            if _as_lookup_failed(e).status == 404:
                return {"found": False, "message": None}
            raise

    def _cached(self, request: dict, call: Callable[[], dict]) -> dict:
        key = hashlib.sha256(json.dumps({"api": self.api_url, **request}, sort_keys=True).encode()).hexdigest()
        path = self.cache_dir / key[:2] / f"{key}.json"
        if path.exists():
            try:
                answer = json.loads(path.read_text(encoding="utf-8"))["answer"]
                self.cache_hits += 1
                return answer
            except (json.JSONDecodeError, KeyError):
                log.warning("cache entry %s unreadable; asking Crossref again", path)
        answer = self._with_retries(call)
        write_json(path, {"request": request, "answer": answer})
        return answer

    def _wait(self, state) -> float:
        exc = state.outcome.exception()
        backoff = self.backoff * 2 ** (state.attempt_number - 1)
        return min(self.max_wait, max(backoff, getattr(exc, "retry_after", None) or 0.0))

    def _with_retries(self, call: Callable[[], dict]) -> dict:
        def before_sleep(state):
            log.info("Crossref: %s; retry %d/%d in %.1f s", state.outcome.exception(), state.attempt_number,
                     self.max_attempts - 1, state.next_action.sleep)

        retrying = Retrying(stop=stop_after_attempt(self.max_attempts), wait=self._wait, reraise=True,
                            retry=retry_if_exception(lambda e: isinstance(e, LookupFailed) and e.retryable),
                            before_sleep=before_sleep)
        for attempt in retrying:
            with attempt:
                pause = self.min_interval - (time.monotonic() - self._last)
                if pause > 0:
                    time.sleep(pause)
                self._last = time.monotonic()
                self.requests += 1
                try:
                    return call()
                except Exception as e:
                    failed = _as_lookup_failed(e)
                    n = attempt.retry_state.attempt_number
                    if failed.retryable and n >= self.max_attempts:
                        failed.args = (f"{failed} (after {n} attempts)",)
                    raise failed from e
        raise AssertionError("unreachable")


# --- per reference ----------------------------------------------------------------------------

@dataclass
class Match:
    status: str = "unmatched"
    doi: str = ""
    method: str = "none"
    score: float = 0.0
    title: str = ""
    year: str = ""
    note: str = ""


def _accept(rec: Mapping, method: str, verdict: Verdict, notes: list[str]) -> Match:
    note = "; ".join([*notes, verdict.note] if verdict.note else notes)
    return Match("matched", str(rec["DOI"]), method, verdict.score, record_title(rec),
                 str(record_year(rec) or ""), note)


def match_reference(ref: Reference, backend, params) -> Match:
    """printed DOI, then printed arXiv id, then a bibliographic search; every candidate validated."""
    if not ref.raw:
        return Match(note="empty reference text")
    notes: list[str] = []
    errors: list[str] = []
    rejected: list[tuple[Verdict, str]] = []

    def fetch(doi: str, what: str) -> dict | None:
        try:
            rec = backend.lookup(doi)
        except LookupFailed as e:
            errors.append(f"{what} {doi}: {e}")
            return None
        if rec is None:
            notes.append(f"{what} {doi} not found")
        return rec

    # 1. A printed DOI: fetch it and check that it is this reference's work.
    if ref.doi and (backend.holds_arxiv or not arxiv_from(ref.doi)):
        rec = fetch(ref.doi, "printed DOI")
        if rec is not None:
            verdict = validate(ref, rec, params, identifier_agrees=True)
            if verdict.accepted:
                return _accept(rec, "printed_doi", verdict, notes)
            rejected.append((verdict, str(rec["DOI"])))
            notes.append(f"printed DOI {ref.doi} is another work ({verdict.note})")

    # 2. A printed arXiv id: its DataCite DOI.
    if ref.arxiv:
        doi = arxiv_doi(ref.arxiv)
        if not backend.holds_arxiv:
            notes.append("DOI built from the printed arXiv id, not checked: Crossref does not hold arXiv DOIs")
            return Match("matched", doi, "arxiv_id", 100.0, ref.title, str(ref.year or ""), "; ".join(notes))
        rec = fetch(doi, "arXiv DOI")
        if rec is not None:
            verdict = validate(ref, rec, params, identifier_agrees=True)
            if verdict.accepted:
                return _accept(rec, "arxiv_id", verdict, notes)
            rejected.append((verdict, str(rec["DOI"])))
            notes.append(f"arXiv DOI {doi} rejected ({verdict.note})")

    # 3. A bibliographic search: the best-scoring candidate that passes validation.
    try:
        candidates = backend.search(ref.raw, params.rows)
    except LookupFailed as e:
        errors.append(f"search: {e}")
        candidates = []
    known = {d.lower() for d in (ref.doi, arxiv_doi(ref.arxiv) if ref.arxiv else "") if d}
    searched: list[tuple[Verdict, str]] = []
    best: tuple[Verdict, dict] | None = None
    for rec in candidates:
        verdict = validate(ref, rec, params, identifier_agrees=str(rec.get("DOI", "")).lower() in known)
        if verdict.accepted and (best is None or verdict.score > best[0].score):
            best = (verdict, rec)
        elif not verdict.accepted and str(rec.get("DOI", "")).lower() not in known:
            searched.append((verdict, str(rec.get("DOI", ""))))
    rejected += searched
    if best is not None:
        return _accept(best[1], "search", best[0], notes)

    if errors:
        return Match("error", note="; ".join(errors + notes))
    if rejected:
        # The printed identifiers' verdicts are in notes already; add the best search candidates'.
        unique = {doi.lower(): (v, doi) for v, doi in sorted(searched, key=lambda r: r[0].score)}
        top = sorted(unique.values(), key=lambda r: -r[0].score)[:2]
        if top:
            notes.append("search candidates failed validation: "
                         + "; ".join(f"{doi} ({v.score:g}): {v.note}" for v, doi in top))
        return Match("rejected", note="; ".join(notes))
    return Match(note="; ".join(notes + ["no candidate found"]))


# --- the stage's work ---------------------------------------------------------------------------

def make_backend(params, cache_dir: str | Path = "data/cache/crossref", mailto: str | None = None, **crossref_kw):
    """The backend params ask for: a LocalIndex over params.records or a CrossrefBackend."""
    if params.backend == "local":
        index = LocalIndex.from_file(params.records)
        if not len(index):
            raise ValueError(f"{params.records} holds no Crossref records with a DOI")
        return index
    return CrossrefBackend(params.api_url, mailto, params.timeout_seconds, cache_dir, **crossref_kw)


def match_citations(citations: pd.DataFrame, backend, params, progress: bool = True):
    """Match every unique reference once; returns (references, citations with match columns, metrics)."""
    if "ref_raw" not in citations.columns:
        raise ValueError(f"citations table has no ref_raw column (columns: {', '.join(citations.columns)})")
    citations = citations.drop(columns=[c for c in ["ref_key", *MATCH_COLUMNS] if c in citations.columns]).fillna("")
    for col in CITATION_COLUMNS:
        if col not in citations.columns:
            citations[col] = ""
    citations["ref_key"] = citations["ref_raw"].map(ref_key)
    first = citations.drop_duplicates("ref_key")
    counts = citations["ref_key"].value_counts()

    rows = []
    for row in tqdm(first.to_dict("records"), desc="match", unit="ref", disable=not progress):
        try:
            m = match_reference(Reference.from_row(row), backend, params)
        except Exception as e:  # one odd reference never sinks the stage
            log.exception("reference %s failed", row["ref_key"])
            m = Match("error", note=f"unexpected {type(e).__name__}: {e}")
        rows.append({**{k: row[k] for k in REFERENCE_COLUMNS[:7]}, "n_citations": int(counts[row["ref_key"]]),
                     "doi": m.doi, "match_method": m.method, "match_score": m.score, "match_status": m.status,
                     "match_title": m.title, "match_year": m.year, "match_note": m.note})
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
        "matched": int(status.get("matched", 0)),
        "by_method": {m: int((matched["match_method"] == m).sum()) for m in METHODS},
        "unmatched": int(status.get("unmatched", 0)),
        "rejected": int(status.get("rejected", 0)),
        "error": int(status.get("error", 0)),
        "match_rate": round(int(status.get("matched", 0)) / n, 4) if n else 0.0,
        "citations": len(citations),
        "citations_with_doi": int((citations["doi"].fillna("") != "").sum()),
    }
