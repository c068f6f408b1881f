"""One printed reference -> its raw text with the fields marked up, CERMINE style.

Four families of styles have parsers of their own, recognised from how an entry begins: author-year
with full names ("Ashish Vaswani and Noam Shazeer. 2017. Title. Venue." — ACM, ACL/natbib), APA
("Vaswani, A., & Shazeer, N. (2017). Title. Venue, 1(2), 3–4."), Vancouver ("Vaswani A, Shazeer N.
Title. Venue. 2017;1:3–4.") and initials-first ("A. Vaswani and N. Shazeer, Venue 1, 3 (2017)." —
physics, IEEE with a quoted title). Any other style (Nature, ACS, Chicago, Harvard, LNCS, IOP, …)
goes to a generic parser that finds the author block, the year and the title separately. A field
that cannot be told apart is left unmarked, never guessed.

A learned parser (citetune/refparse: a CRF trained on strings rendered through the CSL styles) reads
the first author and the year too; where it is sure of them its reading replaces the rules' (field_spans).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from citetune.ids import ARXIV_PRINTED, DOI_PRINTED, YEAR_DIGITS, trim_identifier
from citetune.jats import El, Piece
from citetune.refparse.crf import ReferenceTagger, shipped_tagger
from citetune.text import split_label
from citetune.words import CAPITALISED_PARTICLE, PARTICLE

_UP = "".join(chr(c) for c in range(0x41, 0x250) if chr(c).isupper())
_LO = "".join(chr(c) for c in range(0x61, 0x250) if chr(c).islower())
U, L = f"[{_UP}]", f"[{_LO}]"
# A capitalised word (or an acronym). The first lower-case letter is the required one, so that a
# word can be matched in one way only (no exponential backtracking over lists of words).
WORD = rf"{U}[{_UP}'’\-]*{L}[{_UP}{_LO}'’\-]*|{U}{{2,}}"
SURNAME = rf"(?:{PARTICLE}\s)*(?:[dDlL][’']|[Dd]e\s?)?(?:{WORD})(?:\s(?:{PARTICLE}\s)*(?:{WORD}))??"  # d’Aspremont
INITIALS = rf"{U}{L}?\.(?:[\s-]?{U}{L}?\.)*"  # "A.", "T. B.", "M.-W."
YEAR = rf"{YEAR_DIGITS}[a-z]?"

URL = re.compile(r"https?://\S+")
PAGES = re.compile(r"(?<![\d.])(\d{1,6})(?:\s*(?:[-–—]|--)\s*(\d{1,6}))?(?![\d.])")


class NamePart(NamedTuple):
    """Where a surname or the given names of one author are, and which of the two it is."""
    start: int
    end: int
    tag: str


class Span(NamedTuple):
    """A field of a reference: where it is, its JATS tag and attributes, and for a name its parts."""
    start: int
    end: int
    tag: str
    attrs: Mapping[str, str] = MappingProxyType({})
    parts: tuple[NamePart, ...] = ()


def identifiers(text: str) -> list[Span]:
    """DOI and arXiv id spans (only the identifier itself is marked, not 'doi:' or the URL prefix)."""
    spans = []
    for m in DOI_PRINTED.finditer(text):
        doi = trim_identifier(m.group(1))
        start = m.start(1)
        spans.append(Span(start, start + len(doi), "pub-id", {"pub-id-type": "doi"}))
    for m in ARXIV_PRINTED.finditer(text):
        if any(s.start <= m.start() < s.end for s in spans):
            continue
        ident = trim_identifier(text[m.start("id"):m.end()])
        spans.append(Span(m.start("id"), m.start("id") + len(ident), "pub-id", {"pub-id-type": "arxiv"}))
    return spans


# --- names ---------------------------------------------------------------------------------------

# Words that make an author an organisation ("World Health Organization"), not a person.
_ORGANISATION = re.compile(
    r"\b(?:Organi[sz]ation|Institute|Association|Society|Consortium|Group|Committee|Council|Agency|Foundation|"
    r"Team|Collaboration|Inc|Ltd|University|Cent(?:er|re)|Department|Office|Board|Commission|Network|Project|"
    r"Alliance|Administration|Ministry|Bureau|Laborator(?:y|ies)|Corporation|Company|Program(?:me)?)\b")


# Initials printed without periods ('PH', 'JCW'): a word of one to three capitals.
_INITIALS_RUN = re.compile(rf"{U}{{1,3}}")


def _name(start: int, end: int, *parts: NamePart) -> Span:
    return Span(start, end, "string-name", parts=parts)


_INITIALS_THEN_SURNAME = re.compile(rf"(?P<given>{INITIALS})\s?(?P<sur>{SURNAME})")
_GIVEN_PART = rf"(?:{WORD}|{INITIALS}|{U}\.?)"
_GIVEN_THEN_SURNAME = re.compile(rf"(?P<given>{_GIVEN_PART}(?:\s+{_GIVEN_PART}){{0,3}}?)\s"
                                 rf"(?P<sur>(?:(?:{PARTICLE}|{CAPITALISED_PARTICLE})\s)*(?:{WORD}))")
_INITIALS_ONLY = re.compile(rf"{INITIALS}|{U}")


def _name_given_first(text: str, start: int, end: int) -> Span | None:
    """'Edward J. Hu' -> given 'Edward J.', surname 'Hu' (particles stay with the surname);
    after initials alone the rest is the surname: 'E. Ben Zaken' -> 'E.', 'Ben Zaken'."""
    m = _INITIALS_THEN_SURNAME.fullmatch(text[start:end])
    if m:
        return _name(start, end, NamePart(start + m.start("given"), start + m.end("given"), "given-names"),
                     NamePart(start + m.start("sur"), start + m.end("sur"), "surname"))
    m = _GIVEN_THEN_SURNAME.fullmatch(text[start:end])
    if not m or _ORGANISATION.search(text[start:end]) or (
            _INITIALS_RUN.fullmatch(m.group("sur")) and not _INITIALS_ONLY.fullmatch(m.group("given"))):
        return None
    return _name(start, end, NamePart(start + m.start("given"), start + m.end("given"), "given-names"),
                 NamePart(start + m.start("sur"), start + m.end("sur"), "surname"))


_SURNAME_COMMA_GIVEN = re.compile(rf"(?P<sur>{SURNAME}),\s(?P<given>{INITIALS}|(?:{U}\.){{1,3}}{U}|"
                                  rf"(?:{WORD})(?:\s(?:{WORD}|{INITIALS}|{U}\.)){{0,2}})")
_SURNAME_SPACE_INITIALS = re.compile(rf"(?P<sur>{SURNAME})\s(?P<given>{U}(?:[-\s]?{U}){{0,3}})")
_SURNAME_SPACE_DOTTED = re.compile(rf"(?P<sur>{SURNAME})\s(?P<given>{U}\.?(?:[-\s]?{U}\.?){{0,3}})")


def _name_surname_first(text: str, start: int, end: int, sep: str) -> Span | None:
    """'Vaswani, A.' (sep ', '), 'Vaswani A' (sep ' ') or 'Vaswani A.' (sep '. ')."""
    piece = text[start:end]
    if sep == ", ":
        m = _SURNAME_COMMA_GIVEN.fullmatch(piece)
        if m and " " in m.group("sur") and _INITIALS_RUN.fullmatch(m.group("sur").rsplit(" ", 1)[1]):
            return None
    else:
        m = (_SURNAME_SPACE_DOTTED if sep == ". " else _SURNAME_SPACE_INITIALS).fullmatch(piece)
    if not m:
        return None
    return _name(start, end, NamePart(start + m.start("sur"), start + m.end("sur"), "surname"),
                 NamePart(start + m.start("given"), start + m.end("given"), "given-names"))


def _split_names(text: str, start: int, end: int, pattern: re.Pattern) -> list[tuple[int, int]]:
    """Spans of the names in an author list, split at the separators that `pattern` matches."""
    out, pos = [], start
    for m in pattern.finditer(text[start:end]):
        if m.start() + start > pos:
            out.append((pos, start + m.start()))
        pos = start + m.end()
    if pos < end:
        out.append((pos, end))
    return [(a, b) for a, b in out if text[a:b].strip()]


_ET_AL_END = re.compile(r",?\s*(?:et\s+al\.?|and\s+others)\s*$")
# Where the names of an author list part, by style family
_APA_SEPARATOR = re.compile(r"(?<=\.)[,;]\s(?:(?:&|and)\s)?|[,;]?\s(?:&|and)\s")
_VANCOUVER_SEPARATOR = re.compile(r",?\s(?:and|&)\s|,\s")
_GIVEN_FIRST_SEPARATOR = re.compile(r",\s+and\s+|\s+and\s+|,\s+&\s+|\s+&\s+|,\s+"
                                    r"|\s+with\s+(?:the\s+)?(?:collaboration|assistance)\s+of\s+")
_CHICAGO_FIRST = re.compile(rf"{SURNAME},\s(?:{INITIALS}|(?:{WORD})(?:\s(?:{WORD}|{INITIALS}|{U}\.)){{0,2}})(?=,|\sand\s|$)")
_CHICAGO_AND = re.compile(r",?\s(?:and\s|&\s)?")


def _authors(text: str, start: int, end: int, kind: str) -> list[Span] | None:
    """Name spans for the author list text[start:end]; None when any name does not parse."""
    block = text[start:end]
    etal = _ET_AL_END.search(block)
    if etal:
        end = start + etal.start()
    if kind == "apa":
        parts = _split_names(text, start, end, _APA_SEPARATOR)
        names = [_name_surname_first(text, a, b, ", ") for a, b in parts]
    elif kind in ("vancouver", "vancouver-dotted"):
        end -= text[start:end].endswith(".")  # 'Parisi G.' before the year
        parts = _split_names(text, start, end, _VANCOUVER_SEPARATOR)
        names = [_name_surname_first(text, a, b, " " if kind == "vancouver" else ". ") for a, b in parts]
    elif kind == "chicago":
        # 'Babiker, Mustafa H., John M. Reilly, and A. Denny Ellerman': the first name inverted only.
        first = _CHICAGO_FIRST.match(text[start:end])
        if not first:
            return None
        names = [_name_surname_first(text, start, start + first.end(), ", ")]
        rest = _CHICAGO_AND.match(text[start + first.end():end])
        if start + first.end() < end:
            if not rest:
                return None
            after = start + first.end() + rest.end()  # 'Marinari, E., and Parisi G.': the others either way
            more = _authors(text, after, end, "given-first") or _authors(text, after, end, "vancouver")
            names = names + more if more else [None]
    else:
        parts = _split_names(text, start, end, _GIVEN_FIRST_SEPARATOR)
        names = [_name_given_first(text, a, b) for a, b in parts]
    if not names or any(n is None for n in names):
        return None
    return names


# --- styles --------------------------------------------------------------------------------------

_VENUE = re.compile(
    rf"(?P<src>[^\d]*?[^\s,\d]),?\s+(?:vol\.\s*)?(?P<vol>\d{{1,5}})"
    rf"(?:\s*,\s*(?:no\.\s*)?\d{{1,4}}(?=\s*[,(]))?(?:\s*\(\d{{1,4}}\))?(?:\s*\({YEAR}\))?"
    rf"\s*[,:]\s*(?:pp?\.\s*)?(?P<pages>\d+(?:\s*[-–—]\s*\d+)?)(?!\d)")


_SOURCE_PAGES = re.compile(
    r"(?:[Ii]n\s)?(?P<src>.+?)(?:,\s(?:pp?\.\s*)?(?P<pages>\d+(?:\s*[-–—]\s*\d+)?))?(?=,\s|;\s|\s\(|\.?$)")
# Where an entry's rest is an identifier or a link, not a venue
_IDENTIFIER_FIRST = re.compile(r"arXiv|https?:|doi", re.IGNORECASE)
_IDENTIFIER_SOURCE = re.compile(r"(?:arXiv|https?|doi)", re.IGNORECASE)


def _venue_tail(text: str, start: int, end: int, spans: list[Span]) -> None:
    """Source, volume and pages from 'Venue 9, 8 (1997), 1735–1780', 'Venue 9, 1735' or
    'Venue, vol. 9, no. 8, pp. 1735–1780'; the source alone when no volume follows it."""
    seg = text[start:end]
    m = _VENUE.match(seg)
    if m:
        spans.append(Span(start + m.start("src"), start + m.end("src"), "source"))
        spans.append(Span(start + m.start("vol"), start + m.end("vol"), "volume"))
        _pages(text, start + m.start("pages"), start + m.end("pages"), spans)
        return
    m = _SOURCE_PAGES.match(seg.strip())
    if m and any(c.isalpha() for c in m.group("src")) and not _IDENTIFIER_SOURCE.match(m.group("src")):
        offset = start + len(seg) - len(seg.lstrip())
        spans.append(Span(offset + m.start("src"), offset + m.end("src"), "source"))
        if m.group("pages"):
            _pages(text, offset + m.start("pages"), offset + m.end("pages"), spans)


def _pages(text: str, start: int, end: int, spans: list[Span]) -> None:
    m = PAGES.search(text, start, end)
    if not m:
        return
    spans.append(Span(m.start(1), m.end(1), "fpage"))
    if m.group(2):
        spans.append(Span(m.start(2), m.end(2), "lpage"))


def _year(spans: list[Span], m: re.Match, group: str = "year") -> None:
    spans.append(Span(m.start(group), m.end(group), "year"))


_APA = re.compile(rf"(?P<authors>.+?)\s\((?P<year>{YEAR})\)\.\s(?P<title>.+?[^\s.])[.?!]\s(?P<rest>.*)$")
_APA_VOLUME = re.compile(r"(?P<src>.+?),\s(?P<vol>\d+)(?:\(\d+\))?(?:,\s(?P<pages>\d+(?:[-–—]\d+)?))?\.")
_APA_SOURCE = re.compile(r"(?P<src>[^.]+?)(?:,\s(?P<pages>\d+(?:[-–—]\d+)?))?\.(?:\s|$)")


def _parse_apa(text: str) -> list[Span] | None:
    m = _APA.match(text)
    if not m:
        return None
    names = _authors(text, m.start("authors"), m.end("authors"), "apa")
    if names is None:
        return None
    spans = names
    _year(spans, m)
    spans.append(Span(m.start("title"), m.end("title"), "article-title"))
    rest = m.start("rest")
    if not _IDENTIFIER_FIRST.match(text[rest:]):
        v = _APA_VOLUME.match(text[rest:])
        if v:
            spans.append(Span(rest + v.start("src"), rest + v.end("src"), "source"))
            spans.append(Span(rest + v.start("vol"), rest + v.end("vol"), "volume"))
            if v.group("pages"):
                _pages(text, rest + v.start("pages"), rest + v.end("pages"), spans)
        else:
            s = _APA_SOURCE.match(text[rest:])
            if s:
                spans.append(Span(rest + s.start("src"), rest + s.end("src"), "source"))
                if s.group("pages"):
                    _pages(text, rest + s.start("pages"), rest + s.end("pages"), spans)
    return spans


_AUTHOR_YEAR = re.compile(rf"(?P<authors>.+?)\.\s(?P<year>{YEAR})\.\s(?P<title>.+?[^\s.])[.?!](?:\s(?P<rest>.*))?$")
_IN_PROCEEDINGS = re.compile(r"In\s(?P<src>[^.]+?[^\s.])(?:,\s(?:pages|pp\.?)\s(?P<pages>\d+\s*[-–—]\s*\d+))?\."
                             r"(?:\s(?P<pages2>\d+\s*[-–—]\s*\d+)\.)?")
_VENUE_END = re.compile(r"\.\s+(?:https?:|doi)|\.?\s*$")


def _parse_author_year(text: str) -> list[Span] | None:
    """ACM / ACL: 'Names. 2017. Title. Venue.' (the year may also come last: 'Names. Title. Venue, 2017.')."""
    m = _AUTHOR_YEAR.match(text)
    if not m:
        return None
    names = _authors(text, m.start("authors"), m.end("authors"), "given-first")
    if names is None:
        return None
    spans = names
    _year(spans, m)
    spans.append(Span(m.start("title"), m.end("title"), "article-title"))
    if m.group("rest"):
        rest = m.start("rest")
        inside = _IN_PROCEEDINGS.match(text[rest:])
        if inside:
            spans.append(Span(rest + inside.start("src"), rest + inside.end("src"), "source"))
            group = "pages" if inside.group("pages") else "pages2"
            if inside.group(group):
                _pages(text, rest + inside.start(group), rest + inside.end(group), spans)
        elif not _IDENTIFIER_FIRST.match(text[rest:]):
            stop = _VENUE_END.search(text[rest:])
            _venue_tail(text, rest, rest + stop.start(), spans)
    return spans


_VANCOUVER = re.compile(r"(?P<authors>.+?)\.\s(?P<title>.+?[^\s.])[.?!]\s(?P<rest>.*)$")
_BRACKETED_YEAR = re.compile(rf"\({YEAR}\)")
_INITIAL_OR_YEAR = re.compile(rf"{U}\.|\d|&|and\s")  # what a title does not begin with: the list went on
_VANCOUVER_JOURNAL = re.compile(rf"(?P<src>[^;]+?)\.\s(?P<year>{YEAR});(?P<vol>\d+)(?:\(\d+\))?:(?P<pages>[\d\s–—-]+\d)")
_VANCOUVER_CHAPTER = re.compile(rf"In:\s(?P<src>[^;]+?);\s(?P<year>{YEAR})\.(?:\sp\.\s(?P<pages>[\d\s–—-]+\d))?")
_VANCOUVER_PREPRINT = re.compile(rf"arXiv\s\[Preprint\]\.\s(?P<year>{YEAR})")


def _parse_vancouver(text: str) -> list[Span] | None:
    m = _VANCOUVER.match(text)
    if not m or _BRACKETED_YEAR.match(m.group("title")):  # 'Names, et al. (2012).' is another style
        return None
    names = _authors(text, m.start("authors"), m.end("authors"), "vancouver")
    if names is None and not _INITIAL_OR_YEAR.match(m.group("title")):
        # 'Stacklies W., Redestig H., and Selbig J. Title.': initials with periods, in a list of two names or more
        dotted = _authors(text, m.start("authors"), m.end("authors"), "vancouver-dotted")
        names = dotted if dotted and len(dotted) > 1 else None
    if names is None or len(names) == 1 and len(_authors(text, m.start("authors"), m.end("title"), "given-first") or []) > 1:
        return None  # 'Martin C. Frith, Yutao Fu, …': that full stop was a middle initial's, the names given first
    spans = names
    spans.append(Span(m.start("title"), m.end("title"), "article-title"))
    rest = m.start("rest")
    tail = text[rest:]
    j = _VANCOUVER_JOURNAL.match(tail)
    c = _VANCOUVER_CHAPTER.match(tail)
    p = _VANCOUVER_PREPRINT.match(tail)
    if j:
        spans.append(Span(rest + j.start("src"), rest + j.end("src"), "source"))
        spans.append(Span(rest + j.start("year"), rest + j.end("year"), "year"))
        spans.append(Span(rest + j.start("vol"), rest + j.end("vol"), "volume"))
        _pages(text, rest + j.start("pages"), rest + j.end("pages"), spans)
    elif c:
        spans.append(Span(rest + c.start("src"), rest + c.end("src"), "source"))
        spans.append(Span(rest + c.start("year"), rest + c.end("year"), "year"))
        if c.group("pages"):
            _pages(text, rest + c.start("pages"), rest + c.end("pages"), spans)
    elif p:
        spans.append(Span(rest + p.start("year"), rest + p.end("year"), "year"))
    else:
        years = year_candidates(tail)
        if years:
            y = years[0]
            spans.append(Span(rest + y.start(1), rest + y.end(1), "year"))
    return spans


_ABBREVIATION = re.compile(r"\b[A-Z][a-z]{0,5}\.")


def _sentence_case(text: str) -> bool:
    """A title in sentence case ('Ultrafast kondo screening in graphene'), unlike a journal's name
    ('Physical Review Letters', 'Phys. Rev. Lett.'): four words or more, most of them lower case."""
    words = text.split()
    return len(words) >= 4 and sum(w[:1].islower() for w in words[1:]) >= 0.6 * (len(words) - 1) \
        and not _ABBREVIATION.search(text)


_INITIALS_NAME = rf"{INITIALS}(?:\s{U})?\s?{SURNAME}"  # 'R. B D'Agnostino': an initial may lose its period
_INITIALS_FIRST = re.compile(
    rf"(?P<authors>{_INITIALS_NAME}(?:(?:,\s|,?\sand\s|\s&\s){_INITIALS_NAME})*(?:,?\set\sal\.)?),\s(?P<rest>.*)$")
_MORE_NAMES = re.compile(rf"(?:and|&)\s|{_INITIALS_NAME}[,.]")
_QUOTED_TITLE = re.compile(r"[“\"](?P<title>.+?)[,.]?[”\"],?\s*(?:in\s)?")
_PLAIN_TITLE = re.compile(r"(?P<title>[^,]+?)[,.]\s(?=\S)")
_YEAR_AFTER_VENUE = re.compile(rf"\s\({YEAR}\)|,\s{YEAR}\b")


def _parse_initials_first(text: str) -> list[Span] | None:
    """Physics ('A. B. Name and C. Name, Venue 9, 1735 (1997).') and IEEE ('..., “Title,” in Venue, 2017.')."""
    m = _INITIALS_FIRST.match(text)
    if not m or _MORE_NAMES.match(m.group("rest")):
        return None  # the list goes on ('…, and K. Tanaka. Title'): another style
    names = _authors(text, m.start("authors"), m.end("authors"), "given-first")
    if names is None:
        return None
    spans = names
    rest, tail = m.start("rest"), m.group("rest")
    quoted = _QUOTED_TITLE.match(tail)
    plain_title = _PLAIN_TITLE.match(tail)
    if quoted:
        spans.append(Span(rest + quoted.start("title"), rest + quoted.end("title"), "article-title"))
        rest += quoted.end()
        tail = text[rest:]
    elif plain_title and _sentence_case(plain_title.group("title")):
        # 'A. Name, Ultrafast kondo screening in graphene, Phys. Rev. Lett. 101, 7671 (2013)'
        spans.append(Span(rest + plain_title.start("title"), rest + plain_title.end("title"), "article-title"))
        rest += plain_title.end()
        tail = text[rest:]
    years = year_candidates(tail)
    if years:
        bracketed = [y for y in years if tail[y.start() - 1:y.start()] == "("]
        y = (bracketed or years)[-1]
        spans.append(Span(rest + y.start(1), rest + y.end(1), "year"))
    if not _IDENTIFIER_FIRST.match(tail):
        stop = _YEAR_AFTER_VENUE.search(tail)
        _venue_tail(text, rest, rest + (stop.start() if stop else len(tail)), spans)
    return spans


_ANY_YEAR = re.compile(rf"\((?P<y>{YEAR})\)|(?<![\d/.])(?P<b>{YEAR})(?![\d/])")
_ANY_QUOTED_TITLE = re.compile(r"[“\"](?P<t>[^”\"]{10,}?)[,.]?[”\"]")


def _parse_fallback(text: str) -> list[Span]:
    spans = []
    y = _ANY_YEAR.search(text)
    if y:
        g = "y" if y.group("y") else "b"
        spans.append(Span(y.start(g), y.end(g), "year"))
    q = _ANY_QUOTED_TITLE.search(text)
    if q:
        spans.append(Span(q.start("t"), q.end("t"), "article-title"))
    return spans


# --- any other style: author block, year and title found separately -------------------------------

_URL_IN_ENTRY = re.compile(rf"https?://\S+?(?=,?\s|,{YEAR_DIGITS}\b|[.,;]?$)")
_YEAR_CANDIDATE = re.compile(rf"(?<![\w/.\-–—])({YEAR})(?![\w/\-–—]|\.\d)")
_NOT_A_YEAR_BEFORE = re.compile(r"(?:accessed|retrieved|visited|viewed|cited|downloaded)\b[^.;()]{0,25}$", re.IGNORECASE)


def year_candidates(text: str) -> list[re.Match]:
    """Publication-year candidates: not part of a report number, identifier or URL ('TR-2008-72',
    'cs/2008'), nor the date a web page was accessed."""
    urls = _URL_IN_ENTRY.finditer(text)
    blocked = [(m.start(), m.end()) for m in urls] + [(s.start, s.end) for s in identifiers(text)]
    out = []
    for m in _YEAR_CANDIDATE.finditer(text):
        if any(a <= m.start() < b for a, b in blocked) or _NOT_A_YEAR_BEFORE.search(text[:m.start()]):
            continue
        out.append(m)
    return out


def _organisation_name(word: str) -> re.Pattern:
    return re.compile(rf"(?:{word})(?:\s(?:of|for|and|the|on|&|{word}))*")


_ORGANISATION_NAME = _organisation_name(WORD)
_ORGANISATION_NAME_WITH_CAPITALS = _organisation_name(rf"{WORD}|{U}")


def _corporate(text: str, start: int, end: int) -> list[Span] | None:
    """'World Health Organization', 'OpenAI': an author that is an organisation, taken whole; a lone
    capital is part of the name where a word says it is an organisation ('R Core Team')."""
    block = text[start:end]
    name = _ORGANISATION_NAME_WITH_CAPITALS if _ORGANISATION.search(block) else _ORGANISATION_NAME
    if len(block.split()) <= 6 and name.fullmatch(block):
        return [_name(start, end, NamePart(start, end, "surname"))]
    return None


_SURNAME_FIRST = rf"{SURNAME},\s{INITIALS}"


# How an author block ends, tried in order, and the style families its names may be in.
_AUTHOR_BLOCK_ENDS = (
    (re.compile(rf"(?P<a>.+?)\s?[(\[]\s*(?P<y>{YEAR})\s*[)\]](?:&#160;)?[.,:]?(?=\s|$)"),
     ("apa", "chicago", "given-first", "vancouver")),
    (re.compile(rf"(?P<a>.+?\.)\s(?P<y>{YEAR})\.(?=\s|$)"), ("apa", "chicago")),  # 'Black, J.D. 1929. Title.'
    (re.compile(rf"(?P<a>.+?)\s(?P<y>{YEAR})\s(?=\S)"), ("vancouver",)),  # IOP: 'Carlip S and Vera R 1998 Phys. Rev. D'

    (re.compile(rf"(?P<a>.+?),\s(?P<y>{YEAR})\.(?=\s|$)"), ("apa", "chicago")),  # 'Cressie, N. and C. Wikle, 2011.'
    (re.compile(rf"(?P<a>.+?)\.\s(?P<y>{YEAR})\.(?=\s|$)"), ("given-first", "apa", "chicago", "vancouver")),
    (re.compile(r"(?P<a>.+?):\s"), ("apa", "given-first", "vancouver")),  # BMC: 'Ovretveit J, Serouri A: Title.'

    (re.compile(r"(?P<a>.+?),\s(?=[“\"])"), ("given-first",)),
    # Nature, Cell, ACS: 'Lefèvre, C. & Patel, S. Title.', 'Novak, K.; Costa, J. Title.' end on an initial.
    (re.compile(rf"(?P<a>{_SURNAME_FIRST}(?:(?:[,;]\s|[,;]?\s(?:&|and)\s){_SURNAME_FIRST})*(?:,?\set\sal\.)?)\s(?=\S)"),
     ("apa",)),
    (re.compile(r"(?P<a>.+?[^\s.]{2})\.\s(?=\S)"), ("given-first", "vancouver", "apa")),
)
_COMMA = re.compile(r",\s(?=\S)")


def _author_block(text: str) -> tuple[list[Span], int, re.Match | None] | None:
    """Names at the start of an entry, the offset where they end, and the year printed right after
    them (APA '(2019).', Harvard ', 2019.', ACM '. 2019.') if any."""
    for pattern, kinds in _AUTHOR_BLOCK_ENDS:
        m = pattern.match(text)
        if not m or m.end("a") > 600:
            continue
        year = m if "y" in pattern.groupindex else None
        names = next((found for kind in kinds if (found := _authors(text, 0, m.end("a"), kind))), None)
        names = names or _corporate(text, 0, m.end("a"))
        if names:
            return names, m.end(), year
    # 'A. Name, B. Name, and C. Name, Title, …': the longest run of names before a comma.
    best = None
    for n, comma in enumerate(_COMMA.finditer(text[:600])):
        names = _authors(text, 0, comma.start(), "given-first") or (
            _corporate(text, 0, comma.start()) if n == 0 else None)  # 'OpenAI, Title, …'
        if names and n == 0 and names[0].parts[0].tag == "surname" and len(names[0].parts) == 1:
            return names, comma.end(), None
        if not names:
            if best:
                break
            continue
        best = (names, comma.end(), None)
    return best


_QUOTED_AT_START = re.compile(r"[“\"](?P<t>.+?)[,.]?[”\"]")
# A title ends on a full stop after a word, not after an initial, except a one-letter word ('… with R.').
_TITLE_END = re.compile(r"(?P<t>.+?(?:[^\s.A-Z]|\s[A-Z]))(?:[.?!](?:\s|$)|,\s(?=in:?\s|[A-Z]|arXiv|https?:|doi)|;\s|\s\[)")
_AFTER_YEAR = re.compile(r"[)\]]?\.\s*")
_VENUE_LIKE = re.compile(r"\d+\s*(?:[,:(]|\s\d)|^(?:in:?|vol\.|pp?\.)\s|arXiv|https?:|doi", re.IGNORECASE)


def _parse_generic(text: str) -> list[Span] | None:
    """Authors, year and title of an entry in a style the parsers above do not know."""
    found = _author_block(text)
    if not found:
        return None
    spans, end, year_match = found
    if year_match:
        spans.append(Span(year_match.start("y"), year_match.end("y"), "year"))
    else:
        years = year_candidates(text[end:])
        bracketed = [m for m in years if text[end + m.start() - 1:end + m.start()] == "("]
        if years:
            y = (bracketed or years)[-1]
            spans.append(Span(end + y.start(1), end + y.end(1), "year"))
    rest = text[end:]
    lead = len(rest) - len(rest.lstrip(" .,:"))
    quoted = _QUOTED_AT_START.match(rest[lead:])
    if quoted:
        spans.append(Span(end + lead + quoted.start("t"), end + lead + quoted.end("t"), "article-title"))
        return spans
    m = _TITLE_END.match(rest[lead:])
    if m:
        title = m.group("t")
        # right after '(2002). ' comes the title however short it is ('Econometrics. 3rd edition.'); not after
        # IOP's '1999 ', where the journal follows
        after_year = year_match and year_match.end() == end and _AFTER_YEAR.fullmatch(text[year_match.end("y"):end])
        venue_like = _VENUE_LIKE.search(title) \
            or len(title.split()) < (1 if after_year else 3)
        if not venue_like:
            spans.append(Span(end + lead + m.start("t"), end + lead + m.end("t"), "article-title"))
    return spans


# Tried in this order; each accepts an entry only when its whole author list parses, so the
# signatures ("(2017). " for APA, ". 2017. " after full names, initials first, "Name AB,") decide.
_PARSERS = (_parse_apa, _parse_author_year, _parse_initials_first, _parse_vancouver, _parse_generic)


def _non_overlapping(text: str, spans: list[Span]) -> list[Span]:
    """The spans that overlap neither an identifier, a URL nor an earlier span, with the identifiers."""
    ids = identifiers(text)
    blocked = [(s.start, s.end) for s in ids] + [(m.start(), m.end()) for m in URL.finditer(text)]
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        start, end = span.start, span.end
        if start >= end or any(s < end and start < e for s, e in blocked) or (
                kept and start < kept[-1].end):
            continue
        kept.append(span)
    return sorted(kept + ids, key=lambda s: s.start)


def _rules(text: str) -> tuple[str, list[Span]]:
    """The first style parser that accepts the entry (its name) and its spans; 'fallback' when none does."""
    for parse in _PARSERS:
        if spans := parse(text):
            return parse.__name__, spans
    return "fallback", _parse_fallback(text)


def rule_spans(text: str) -> list[Span]:
    """Non-overlapping field spans of a reference (without its label) as the rules alone read it."""
    return _non_overlapping(text, _rules(text)[1])


# --- the learned parser (citetune/refparse) --------------------------------------------------------

_CRF_TAG = {"title": "article-title", "container": "source", "volume": "volume", "year": "year"}


def _crf_names(runs: list) -> list[Span]:
    """Name spans from the CRF's author block (the runs before the first other field): a surname and
    the given names beside it make one name, in either order."""
    names: list[list] = []  # [family run or None, given run or None]
    for run in runs:
        if run.label not in ("family", "given", "other"):
            break
        if run.label == "other":
            continue
        slot = 0 if run.label == "family" else 1
        if names and names[-1][slot] is None and names[-1][1 - slot] is not None:
            names[-1][slot] = run
        else:
            names.append([run, None] if slot == 0 else [None, run])
    out = []
    for family, given in names:
        if family is None:
            continue
        parts = [NamePart(family.start, family.end, "surname")]
        if given is not None:
            parts.append(NamePart(given.start, given.end, "given-names"))
        parts.sort()
        out.append(_name(parts[0].start, parts[-1].end, *parts))
    return out


def _crf(text: str, tagger: ReferenceTagger) -> tuple[list, list[Span]]:
    """The learned parser's runs over `text`, and its field spans: the names of the author block, and
    the first run of title, container, volume, pages and year."""
    runs = tagger.runs(text)
    spans = _crf_names(runs)
    seen: set[str] = set()
    for run in runs:
        if run.label in seen or run.label not in (*_CRF_TAG, "pages"):
            continue
        seen.add(run.label)
        if run.label == "pages":
            _pages(text, run.start, run.end, spans)
        else:
            spans.append(Span(run.start, run.end, _CRF_TAG[run.label]))
    return runs, spans


# How sure the learned parser must be of the first surname (of the year) for its reading of the first
# author (of the year) to replace the rules': below it the rules read them better (bench/reference_parser.py).
NAMES_MIN, YEAR_MIN = 0.9, 0.8


def _overlap(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def _first_name(spans: list[Span]) -> Span | None:
    return min((s for s in spans if s.tag == "string-name"), key=lambda s: s.start, default=None)


def _first_part(spans: list[Span], tag: str) -> NamePart | None:
    """The first author's surname or given names ('surname', 'given-names')."""
    name = _first_name(spans)
    return next((p for p in name.parts if p.tag == tag), None) if name else None


def _first_surname(spans: list[Span]) -> NamePart | None:
    return _first_part(spans, "surname")


def _overreaches(learned: NamePart | None, rules: NamePart | None) -> bool:
    """Whether the learned parser's first surname is none, or the rules' with more around it: the CRF's
    surname runs on over given names ('Neil Houlsby', 'van de Wiel MA') where the rules' stop; the rules'
    over initials ('Stock JH') where the CRF's stop."""
    return learned is None or (rules is not None and learned.start <= rules.start and rules.end <= learned.end
                               and (learned.start, learned.end) != (rules.start, rules.end))


def _given_read_as_surname(learned: NamePart | None, spans: list[Span]) -> bool:
    """Whether the learned parser's first surname is the first of the given names the rules read for the
    first author, a middle initial after it: it reads 'Peter J Turnbaugh' as surname 'Peter' where the rules,
    reading the whole list, see the given names first. (Where the given names are the CRF's surname alone,
    'Park J-won', the CRF is the one to trust.)"""
    given = _first_part(spans, "given-names")
    return learned is not None and given is not None and given.start <= learned.start and learned.end < given.end


def _corporate_first(text: str, spans: list[Span]) -> bool:
    """Whether the rules read the first author as an organisation ('R Core Team'): a name that is a surname
    alone, with a word that says so. The learned parser knows people's names: it would take 'Team' for one."""
    name = _first_name(spans)
    return name is not None and [p.tag for p in name.parts] == ["surname"] \
        and bool(_ORGANISATION.search(text, name.start, name.end))


# A list bullet some layouts print before each entry ('• Pebesma, E.J., 1998. …').
_BULLET = re.compile(r"[•◦▪‣∙·]\s*")


def _shifted(spans: list[Span], by: int) -> list[Span]:
    return [s._replace(start=s.start + by, end=s.end + by,
                       parts=tuple(p._replace(start=p.start + by, end=p.end + by) for p in s.parts)) for s in spans]


def field_spans(text: str, tagger: ReferenceTagger | None = None) -> list[Span]:
    """Non-overlapping field spans of a reference (without its label), sorted by position: the first
    author and the year from the learned parser (`tagger`, by default the shipped model) where it is sure
    of them, every other field from the rules."""
    if bullet := _BULLET.match(text):
        return _shifted(field_spans(text[bullet.end():], tagger), bullet.end())
    rules = _rules(text)[1]
    runs, learned = _crf(text, tagger or shipped_tagger())
    confidence = {run.label: run.confidence for run in runs if run.confidence is not None}
    taken: list[Span] = []
    if confidence.get("family", 0.0) >= NAMES_MIN and not _corporate_first(text, rules) \
            and not _overreaches(_first_surname(learned), _first_surname(rules)) \
            and not _given_read_as_surname(_first_surname(learned), rules):
        # names past the author block the rules found (a title's words read as names) are not taken, and
        # where the rules read names, only the first author's is replaced
        names = [s for s in learned if s.tag == "string-name"
                 and not any(_overlap(s, r) for r in rules if r.tag != "string-name")]
        taken += names[:1] if any(r.tag == "string-name" for r in rules) else names
    if confidence.get("year", 0.0) >= YEAR_MIN:
        taken += [s for s in learned if s.tag == "year"][:1]
    years = any(s.tag == "year" for s in taken)
    # A rules' field that overlaps what the learned parser was taken for gives way to it (to the learned
    # parser's reading of that field, where it has one).
    kept = [s for s in rules if not (years and s.tag == "year") and not any(_overlap(s, t) for t in taken)]
    lost = {s.tag for s in rules if s.tag not in ("year", "string-name")} - {s.tag for s in kept}
    chosen = taken + kept + [s for s in learned if s.tag in lost and not any(_overlap(s, t) for t in taken)]
    if not any(s.tag == "article-title" for s in chosen):
        # a title the rules could not tell apart ('StatXact 6: …', a book before its publisher): the learned one
        # (not a lone word: in a style that prints no title, that is the journal's abbreviation, 'Astrophys.')
        chosen += [s for s in learned if s.tag == "article-title" and " " in text[s.start:s.end]
                   and not any(_overlap(s, c) for c in chosen)]
    return _non_overlapping(text, chosen)


def _with_gaps(text: str, start: int, end: int, marked: list[tuple[int, int, El]]) -> list[Piece]:
    """text[start:end] as pieces: each (s, e, element) in place of text[s:e], the text between kept."""
    out: list[Piece] = []
    pos = start
    for s, e, element in marked:
        if s > pos:
            out.append(text[pos:s])
        out.append(element)
        pos = e
    if pos < end:
        out.append(text[pos:end])
    return out


def _element(text: str, span: Span) -> El:
    parts = [(p.start, p.end, El(p.tag, [text[p.start:p.end]])) for p in sorted(span.parts)]
    content = _with_gaps(text, span.start, span.end, parts) if parts else [text[span.start:span.end]]
    return El(span.tag, content, dict(span.attrs))


def parse_reference(raw: str) -> list[Piece]:
    """The mixed-citation content of one entry: its label and raw text, with the fields marked up."""
    label, text = split_label(raw)
    pieces: list[Piece] = [raw[: len(raw) - len(text)]] if label else []
    fields = [(span.start, span.end, _element(text, span)) for span in field_spans(text)]
    return pieces + _with_gaps(text, 0, len(text), fields)
