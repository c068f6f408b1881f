"""Whether a reference and a Crossref record are the same work (`validate`): what the reference
prints (`PrintedReference`, as parse read it) compared field by field with the record, as Crossref's
own search-based matching does; where what parse read disagrees, the record's fields are looked for in the
raw text itself. One rule for every backend, so a look-alike never becomes a DOI."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from citetune.ids import YEAR, find_arxiv, split_version, without_ids
from citetune.matching.records import record_authors, record_titles, record_year
from citetune.words import PARTICLES, STOP_WORDS, comparable_text


def ref_key(ref_raw: str) -> str:
    """Stable key of a reference: the same text (up to case, accents, punctuation) gives the same key."""
    return hashlib.sha1(comparable_text(ref_raw).encode()).hexdigest()[:16]


@dataclass
class PrintedReference:
    """What a reference prints, as parse read it: its raw text and the fields parse found in it."""

    raw: str
    authors: list[str] = field(default_factory=list)
    title: str = ""
    year: int | None = None
    doi: str = ""
    arxiv: str = ""

    @classmethod
    def from_row(cls, row: Mapping) -> "PrintedReference":
        def get(k: str) -> str:
            v = row.get(k)
            return "" if v is None or (isinstance(v, float) and v != v) else str(v).strip()  # None or NaN

        # parse found the year and the identifiers, marked up or printed in the text; trusted as written.
        year = YEAR.search(get("ref_year"))
        return cls(
            raw=get("ref_raw"),
            authors=[a.strip() for a in get("ref_authors").split(";") if a.strip()],
            title=get("ref_title"),
            year=int(year.group(1)) if year else None,
            doi=get("ref_doi"),
            arxiv=split_version(get("ref_arxiv"))[0] or find_arxiv(get("ref_doi")),
        )

    @cached_property
    def segments(self) -> list[str]:
        """Runs of 1-3 consecutive sentence-like pieces of the raw text: one of them is the title, if printed."""
        pieces = [comparable_text(p) for p in re.split(r"(?<=[.?!])\s+|[“”\"«»]", without_ids(self.raw))]
        pieces = [p for p in pieces if p]
        return [" ".join(pieces[i:j]) for i in range(len(pieces)) for j in range(i + 1, min(i + 4, len(pieces) + 1))]

    @cached_property
    def first_author_tokens(self) -> list[str]:
        """Normalised words that name the first author: the raw text up to the first author separator."""
        head = re.split(r",|;|\band\b|&|\bet al\b", self.raw, maxsplit=1)[0]
        return comparable_text(head).split()[:8]

    @cached_property
    def text(self) -> str:
        """The raw text in comparable form, identifiers left out: where a record's fields are looked for."""
        return comparable_text(without_ids(self.raw))

    @cached_property
    def numbers(self) -> set[str]:
        return set(self.text.split())


def surname_variants(name: str) -> set[str]:
    """'Ben Zaken' -> {'ben zaken', 'benzaken', 'zaken'}; 'Allen-Zhu' -> {'allen zhu', 'allenzhu', 'allen', 'zhu'}."""
    toks = comparable_text(name).split()
    if not toks:
        return set()
    core = [t for t in toks if t not in PARTICLES] or toks
    return {" ".join(toks), "".join(toks), " ".join(core), "".join(core), core[0], core[-1]}


def author_similarity(ref: PrintedReference, rec: Mapping) -> tuple[float, str]:
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


def _same_word(a: str, b: str) -> bool:
    """Spelling variants ('optimisation', 'models') are the same word; numbers and short words must be equal."""
    if a == b:
        return True
    if min(len(a), len(b)) < 4 or any(c.isdigit() for c in a + b):
        return False
    # One slip of the keyboard in a long word ('traget', 'phsae') leaves it the same word.
    return fuzz.ratio(a, b) >= 85 or (min(len(a), len(b)) >= 5 and OSA.distance(a, b) <= 1)


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
            if not ok and w not in STOP_WORDS and not any(_same_word(w, o) for o in other)]


def title_agreement(ref: PrintedReference, rec: Mapping, threshold: float) -> tuple[float, list[str]]:
    """(similarity 0-100, words that differ) of the record's title and the printed title or a title-like
    piece of the raw text. Agreement needs similarity >= threshold and no differing content word: look-alike
    titles ('... with human feedback' / '... without human feedback') are close by characters only."""
    titles = [t for t in (comparable_text(t) for t in record_titles(rec)) if t]
    printed = ([comparable_text(ref.title)] if ref.title else []) + ref.segments
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


def volume_page_agree(ref: PrintedReference, rec: Mapping) -> bool:
    """The record's volume (or, without one, its proceedings' title) and first page are printed in the reference."""
    page = comparable_text(re.split(r"[-–]", str(rec.get("page") or rec.get("article-number") or ""))[0])
    if not page or page not in ref.numbers:
        return False
    volume = comparable_text(rec.get("volume") or "")
    if volume:
        return volume in ref.numbers
    container = rec.get("container-title") or []
    container = comparable_text(container[0] if isinstance(container, list) and container else container)
    return len(container) >= 10 and fuzz.partial_ratio(container, comparable_text(ref.raw)) >= 95


def title_in_text(ref: PrintedReference, rec: Mapping, threshold: float) -> tuple[float, list[str]]:
    """(similarity 0-100, words that differ) of the record's title and the stretch of the raw text most like
    it, wherever it stands: a title parse cut short or merged with the authors or the year is still there."""
    best: tuple[float, list[str]] = (0.0, [])
    for title in (comparable_text(t) for t in record_titles(rec)):
        if len(title) < 12:  # a word or two turns up by chance in any reference
            continue
        found = fuzz.partial_ratio_alignment(title, ref.text, score_cutoff=threshold)
        if found is None:
            continue
        # The words of the raw text that lie mostly inside the aligned stretch.
        words = [m.group() for m in re.finditer(r"\S+", ref.text)
                 if min(m.end(), found.dest_end) - max(m.start(), found.dest_start) > len(m.group()) / 2]
        differing = _unexplained(title.split(), words) + _unexplained(words, title.split())
        if not differing:
            return found.score, []
        if not best[1] or len(differing) < len(best[1]):
            best = (found.score, differing)
    return best


def venue_in_text(ref: PrintedReference, rec: Mapping) -> list[str]:
    """The record's venue fields printed in the raw text: its container title or abbreviation, volume, first page."""
    found = []
    for key, what in (("container-title", "container"), ("short-container-title", "container abbreviation")):
        names = rec.get(key) or []
        for name in (comparable_text(n) for n in (names if isinstance(names, list) else [names])):
            # A long name may be slightly misspelt; a short one ('phys rev b') must stand whole, as a run of words.
            if name and (f" {name} " in f" {ref.text} " or
                         len(name) >= 15 and fuzz.partial_ratio(name, ref.text) >= 90):
                found.append(what)
                break
    volume = comparable_text(rec.get("volume") or "")
    if volume and volume in ref.numbers:
        found.append("volume")
    page = comparable_text(re.split(r"[-–]", str(rec.get("page") or rec.get("article-number") or ""))[0])
    if page and page in ref.numbers:
        found.append("first page")
    return found


def found_in_text(ref: PrintedReference, rec: Mapping, params, author_score: float) -> tuple[list[str], float]:
    """The record's fields printed in the raw text (first author among the first words, title, exact year,
    venue), and the title's similarity there."""
    found = ["first author"] if author_score >= params.min_author_similarity else []
    title_score, differing = title_in_text(ref, rec, params.min_title_similarity)
    if title_score >= params.min_title_similarity and not differing:
        found.append("title")
    year = record_year(rec)
    if year is not None and str(year) in ref.numbers:
        found.append("year")
    return found + venue_in_text(ref, rec), title_score


def validated_in_text(found: list[str]) -> bool:
    """Crossref's way with unstructured references: first author, title, year and the venue (its name, or
    volume and first page) all printed. A look-alike misses one: another title (companion, erratum, next in
    the issue), year or first author, or venue (a preprint or the journal version)."""
    venue = "container" in found or "container abbreviation" in found or {"volume", "first page"} <= set(found)
    return venue and {"first author", "title", "year"} <= set(found)


@dataclass
class Verdict:
    accepted: bool
    score: float  # 0-100 from the components
    note: str
    venue: bool = False  # the record's volume (or venue) and first page are printed too: breaks ties


def validate(ref: PrintedReference, rec: Mapping, params, identifier_agrees: bool = False) -> Verdict:
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
    found, text_title_score = found_in_text(ref, rec, params, author_score)
    in_text = f"in the reference text: {', '.join(found) or 'none of its fields'}"
    if problems and validated_in_text(found):
        # What parse read was wrong (a title cut or merged with the authors, the year inside it); the raw text
        # holds every field of the record.
        score = 0.6 * text_title_score + 0.25 * author_score + 0.15 * 100.0
        return Verdict(True, round(score, 1), f"validated on the reference text ({'; '.join(problems)}); {in_text}",
                       venue=True)
    if problems:
        return Verdict(False, round(score, 1), "; ".join([*problems, in_text]))
    return Verdict(True, round(score, 1), "; ".join(n for n in (how, in_text) if n), volume_page_agree(ref, rec))
