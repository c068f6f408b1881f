"""In-text citations -> links to reference entries, for every common style.

Numeric in brackets ("[3]", "[2, 5]", "[4–6]", "[3,7–9]", IEEE's "[2]–[4]"), superscript numbers
(marked by the layout as SUP_OPEN…SUP_CLOSE), numbers in parentheses ("(12)", not "Eq. (3)" or an
enumeration "(1) we…"), and author–year, parenthetical "(Smith et al., 2019; Lee and Park 2018a)" or
narrative "Smith et al. (2019)", resolved by surname(s) and year (with its a/b letter).

Which numeric styles a paper uses is decided once per paper from how many of each kind resolve:
superscripts and parenthesised numbers are taken only where they outnumber bracketed citations, so a
footnote mark or an equation number in a bracket-style paper is left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from citetune import jats
from citetune.engines.layout import SUPERSCRIPT, plain
from citetune.engines.references import WORD, YEAR
from citetune.ids import YEAR_DIGITS
from citetune.text import DASH, NUM, NUMERIC_GROUP, NUMERIC_ITEMS
from citetune.words import CAPITALISED_PARTICLE, PARTICLE, fold

_ITEM = re.compile(rf"({NUM})(?:\s*{DASH}\s*({NUM}))?")
BRACKET_RANGE = re.compile(rf"\[({NUM})\]\s*{DASH}\s*\[({NUM})\]")  # IEEE: "[2]–[4]"
PARENS = re.compile(rf"\(\s*{NUMERIC_ITEMS}\s*\)")
# Words after which "(3)" is an equation, figure, step… and not a citation.
_NOT_CITED_AFTER = re.compile(
    r"(?:eqs?|equations?|fig|figs|figures?|tables?|tab|sections?|sec|steps?|algorithms?|lines?|theorems?|"
    r"lemmas?|propositions?|corollar(?:y|ies)|definitions?|chapters?|conditions?|constraints?|assumptions?|"
    r"appendix|expressions?|relations?|formulas?|inequalit(?:y|ies))"
    r"\.?(?:\s*\(\d+\)\s*(?:and|or|to|,|–|-))?\s*$", re.I)
_NUMBER_WORD = re.compile(r"[\w)\]]$")

# --- author-year -----------------------------------------------------------------------------------

_NAME = rf"(?:(?:{PARTICLE}|{CAPITALISED_PARTICLE})\s)*(?:{WORD})"
# The first author may be several capitalised words: an organisation ("World Health Organization"),
# or a word before the name ("Following Smith et al. (2019)"); the resolver tries the shorter tails too.
_NAMES = (rf"(?P<first>{_NAME}(?:\s(?:{WORD})){{0,3}})(?:(?P<etal>\s+et\s+al\.?)|(?:,\s+{_NAME})*,?\s+(?:and|&)\s+"
          rf"(?P<second>{_NAME}))?")
# '2019a, b' is two years; in '2006, p. 31' the 'p' is a locator's.
_YEARS = rf"(?P<years>{YEAR}(?:\s*,\s*(?:{YEAR}|[a-z](?!\.))\b)*)"
_LOCATOR = r"(?i:pp?\.|ch\.|chap\.?|chapters?|sec(?:t|tion)?s?\.?|§)\s*[\dIVXivx]+(?:\.\d+)*(?:\s*[-–]\s*\d+)?"
_PAREN_CITE = re.compile(rf"{_NAMES},?\s+{_YEARS}")
_NARRATIVE = re.compile(rf"{_NAMES}\s+[(\[]\s*{_YEARS}(?:\s*,\s*{_LOCATOR})?\s*[)\]]")
_BRACKETED = re.compile(r"[(\[]([^()\[\]]{6,400})[)\]]")
_ONE_YEAR = re.compile(rf"({YEAR_DIGITS})([a-z]?)|(?<=,)\s*([a-z])\b")


@dataclass
class Entry:
    ref_id: str
    label: int | None
    text: str  # the raw entry without its label, folded
    first_author: str  # parsed surname, folded ('' when the parser could not tell)
    authors: int = 0  # 1, 2, or 3 for more (author_count); 0 where the parser found no name


class ReferenceIndex:
    """Finds the entry a citation names: by its label, or by first surname, co-author and year."""

    def __init__(self, entries: list[Entry]):
        self.entries = entries
        self.by_label = {e.label: e.ref_id for e in entries if e.label is not None}

    def numbers(self, numbers: list[int]) -> list[str] | None:
        ids = [self.by_label.get(n) for n in numbers]
        return None if not ids or None in ids else ids

    def author_year(self, first: str, second: str | None, year: str, suffix: str, etal: bool = False) -> str | None:
        """The entry of 'first (and second | et al.), year+suffix'; where two entries of the first
        author's and year fit alike, the one with as many authors as the citation names."""
        first, second = fold(first), fold(second) if second else None
        stamp = re.compile(rf"\b{year}{suffix}(?![a-z\d])" if suffix else rf"\b{year}(?![\d])")
        found = []
        for e in self.entries:
            m = stamp.search(e.text)
            if not m:
                continue
            zone = e.text[:max(m.start(), 60)]  # the names come before the year, or early in the entry
            at = re.search(rf"(?<![\w]){re.escape(first)}(?![\w])", zone)
            if not at or (second and not re.search(rf"(?<![\w]){re.escape(second)}(?![\w])", zone)):
                continue
            if not suffix and re.search(rf"\b{year}[a-z](?![a-z\d])", e.text):
                continue  # "2019" cannot tell 2019a from 2019b
            found.append((e.first_author != first, at.start(), e.ref_id, e.authors))
        found.sort()
        if not found:
            return None
        tied = [f for f in found if f[:2] == found[0][:2]]
        if len(tied) > 1:
            tied = [f for f in tied if f[3] == (3 if etal else 2 if second else 1)]
        return tied[0][2] if len(tied) == 1 else None


def author_count(pieces: list[jats.Piece]) -> int:
    """1, 2, or 3 for more: the names the reference parser marked in an entry, 'et al.' after them
    counting as more; 0 where it marked none."""
    names, etal = 0, False
    for p in pieces:
        if isinstance(p, jats.El) and p.tag == "string-name":
            names += 1
        elif isinstance(p, str) and names and re.match(r"[\s,]*et\s+al\b", p):
            etal = True
        elif isinstance(p, jats.El):
            break  # the names are over
    return 3 if etal else min(3, names)


# --- finding the groups ----------------------------------------------------------------------------

class CitationGroup(NamedTuple):
    """A citation group found in a paragraph: where it is, and its text as text and xref pieces."""
    start: int
    end: int
    pieces: list[jats.Piece]


class XrefSpan(NamedTuple):
    """Where one citation of an author-year group is, and the entry it names."""
    start: int
    end: int
    ref_id: str


def _expand(text: str) -> list[int] | None:
    numbers = []
    for m in _ITEM.finditer(text):
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if not 0 <= b - a <= 50:
            return None
        numbers += range(a, b + 1)
    return numbers


def _numbered_pieces(text: str, index: ReferenceIndex) -> list[jats.Piece] | None:
    """'4–6, 9' -> xref('4–6': 4 5 6), ', ', xref('9'); None unless every number is a label."""
    pieces, pos = [], 0
    for m in _ITEM.finditer(text):
        ids = index.numbers(_expand(m.group(0)) or [])
        if ids is None:
            return None
        pieces += [text[pos:m.start()], jats.xref(m.group(0), ids)]
        pos = m.end()
    return [p for p in pieces + [text[pos:]] if p != ""] or None


def bracket_groups(text: str, index: ReferenceIndex) -> list[CitationGroup]:
    out = []
    for m in BRACKET_RANGE.finditer(text):
        ids = index.numbers(list(range(int(m.group(1)), int(m.group(2)) + 1))) \
            if 0 < int(m.group(2)) - int(m.group(1)) <= 50 else None
        if ids:
            out.append(CitationGroup(m.start(), m.end(), ["[", jats.xref(text[m.start() + 1:m.end() - 1], ids), "]"]))
    for m in NUMERIC_GROUP.finditer(text):
        inner = _numbered_pieces(m.group(0)[1:-1], index)
        if inner and not any(s <= m.start() < e for s, e, _ in out):
            out.append(CitationGroup(m.start(), m.end(), ["[", *inner, "]"]))
    return out


def superscript_groups(text: str, index: ReferenceIndex) -> list[CitationGroup]:
    out = []
    for m in SUPERSCRIPT.finditer(text):
        inner = _numbered_pieces(m.group(1), index)
        if inner:
            out.append(CitationGroup(m.start(), m.end(), [jats.El("sup", inner)]))
    return out


def paren_groups(text: str, index: ReferenceIndex) -> list[CitationGroup]:
    out = []
    for m in PARENS.finditer(text):
        before, after = text[max(0, m.start() - 80):m.start()], text[m.end():m.end() + 20]  # the words around
        if _NUMBER_WORD.search(before) or _NOT_CITED_AFTER.search(before):
            continue  # "f(3)", "Eq. (3)", "Eqs. (3) and (4)"
        if (m.start() == 0 or re.search(r"(?:[:;]\s*|(?<!\bal)\.\s*)$", before)) and re.match(r"\s*[a-z]", after):
            continue  # an enumeration: "(1) we ..., (2) we ..."
        inner = _numbered_pieces(m.group(0)[1:-1], index)
        if inner:
            out.append(CitationGroup(m.start(), m.end(), ["(", *inner, ")"]))
    return out


def _resolve_names(m: re.Match, index: ReferenceIndex, offset: int = 0
                   ) -> tuple[int, list[XrefSpan]] | None:
    """Where the cited names start and the xref spans of the years, trying the first author's
    capitalised words from the longest run to the last word alone."""
    first, etal = m.group("first"), bool(m.group("etal"))
    years, at = m.group("years"), offset + m.start("years")
    for w in re.finditer(r"\S+", first):
        found = _year_pieces(years, at, first[w.start():], m.group("second"), index, etal)
        if found:
            return offset + m.start("first") + w.start(), found
    if m.group("second"):  # 'Germany and Smith (2019)': the words before 'and' were not a name
        found = _year_pieces(years, at, m.group("second"), None, index)
        if found:
            return offset + m.start("second"), found
    return None


def _year_pieces(text: str, offset: int, first: str, second: str | None,
                 index: ReferenceIndex, etal: bool = False) -> list[XrefSpan] | None:
    """(start, end, ref id) for each year of '2019a, 2020' or '2019a,b' after the names; None unless
    every one resolves."""
    spans, year = [], ""
    for m in _ONE_YEAR.finditer(text):
        if m.group(1):
            year, suffix, start = m.group(1), m.group(2), m.start(1)
        else:
            suffix, start = m.group(3), m.start(3)
        ref_id = index.author_year(first, second, year, suffix, etal) if year else None
        if ref_id is None:
            return None
        spans.append(XrefSpan(offset + start, offset + m.end(), ref_id))
    return spans or None


def author_year_groups(text: str, index: ReferenceIndex) -> list[CitationGroup]:
    out = []
    # Parenthetical: every citation in '(see Smith et al., 2019; Lee and Park 2018a)' that resolves.
    for g in _BRACKETED.finditer(text):
        inner, offset, spans = g.group(1), g.start(1), []
        for c in _PAREN_CITE.finditer(inner):
            resolved = _resolve_names(c, index, offset)
            if resolved:  # the first xref takes the names too: '(<xref>Smith et al., 2019a</xref>,<xref>b</xref>)'
                start, found = resolved
                spans += [XrefSpan(start, found[0].end, found[0].ref_id), *found[1:]]
        if spans:
            out.append(CitationGroup(g.start(), g.end(), _spans_to_pieces(text, g.start(), g.end(), spans)))
    # Narrative: 'Smith et al. (2019)' links the year(s) in the brackets.
    taken = [(s, e) for s, e, _ in out]
    for c in _NARRATIVE.finditer(text):
        if any(s <= c.start("years") < e for s, e in taken):
            continue
        resolved = _resolve_names(c, index)
        if resolved:
            found = resolved[1]
            start, end = found[0].start, found[-1].end
            out.append(CitationGroup(start, end, _spans_to_pieces(text, start, end, found)))
    return out


def _spans_to_pieces(text: str, start: int, end: int, spans: list[XrefSpan]) -> list[jats.Piece]:
    pieces, pos = [], start
    for s, e, rid in sorted(spans):
        pieces += [text[pos:s], jats.xref(text[s:e], [rid])]
        pos = e
    return [p for p in pieces + [text[pos:end]] if p != ""]


# --- a whole paper ----------------------------------------------------------------------------------

def link_paper(paragraphs: list[str], index: ReferenceIndex) -> list[list[jats.Piece]]:
    """Each paragraph as text and xref pieces, the paper's numeric style decided from all of them."""
    found = [{"brackets": bracket_groups(p, index), "super": superscript_groups(p, index),
              "parens": paren_groups(p, index), "author_year": author_year_groups(p, index)} for p in paragraphs]
    count = {kind: sum(len(f[kind]) for f in found) for kind in ("brackets", "super", "parens")}
    use = {"brackets", "author_year"}
    if count["super"] > count["brackets"] and count["super"] > count["parens"]:
        use.add("super")
    if count["parens"] > count["brackets"] and count["parens"] > count["super"]:
        use.add("parens")
    out = []
    for text, groups in zip(paragraphs, found):
        chosen = sorted((g for kind in use for g in groups[kind]), key=lambda g: (g.start, -g.end))
        pieces: list[jats.Piece] = []
        last = 0
        for start, end, group in chosen:
            if start < last:
                continue
            pieces += [plain(text[last:start]), *group]
            last = end
        pieces.append(plain(text[last:]))
        out.append([p for p in pieces if p != ""])
    return out
