"""The built-in engine: PDF -> JATS with PyMuPDF, from the positions and fonts of the text spans.

Layout first (columns, visual lines, running headers and page numbers dropped: layout.py), then the
title block, then zones (front matter, body, floats, references, back matter: zones.py), each read
by its own step here (the abstract from the front, paragraphs from each section, entry strings from
the references; references.py marks up each entry's fields), then the in-text citation groups are
linked to the reference entries (citations.py).
"""

from __future__ import annotations

import bisect
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pymupdf

from citetune import jats
from citetune.engines import citations, zones
from citetune.engines.layout import (
    Line,
    drop_footnote_marks,
    drop_running_text,
    page_lines,
    page_text,
    t1_fonts,
)
from citetune.engines.references import parse_reference
from citetune.engines.zones import (
    HEADING_NUMBER,
    Section,
    entry_text,
    label_number,
    running_text_size,
)
from citetune.pdf_check import pdf_problem
from citetune.text import (
    SAME_AUTHORS,
    clean_text,
    join_line_hyphen,
    split_label,
    words_of,
)
from citetune.words import PARTICLE, PARTICLES


class ExtractionError(Exception):
    """This PDF cannot be extracted; the message says why (empty, not a PDF, encrypted, no text)."""


class TextSection(NamedTuple):
    heading: str
    paragraphs: list[str]


@dataclass
class Paper:
    title: str = ""
    authors: list[str] = field(default_factory=list)
    abstract: str = ""
    sections: list[TextSection] = field(default_factory=list)
    references: list[str] = field(default_factory=list)  # raw entries, label included


# --- opening -------------------------------------------------------------------------------------

def open_pdf(path: str | Path) -> pymupdf.Document:
    path = Path(path)
    problem = pdf_problem(path)
    if problem:
        hint = "; download it again" if problem.startswith("truncated") else ""
        raise ExtractionError(problem + hint)
    data = path.read_bytes()
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as e:  # noqa: BLE001 - MuPDF raises several types for broken files
        raise ExtractionError(f"cannot be opened as a PDF: {e}") from None
    if doc.needs_pass:
        raise ExtractionError("encrypted: the PDF needs a password")
    if doc.page_count == 0:
        raise ExtractionError("the PDF has no pages")
    return doc


# --- structure: zones, then a reader for each ----------------------------------------------------

# A first section's number ('1 Introduction', '1. Introduction', 'I. INTRODUCTION'): such a heading in the
# largest type of the first page means the title was dropped as a running head.
_FIRST_SECTION = re.compile(r"(?:1\.?|I\.)\s+\S")
# A structured abstract without the word 'Abstract' opens within the first lines after the title block
# (its authors and affiliations); a label further down is the body's.
_ABSTRACT_LABEL_WITHIN = 15
_ABSTRACT = re.compile(r"^\s*abstract\s*[.:—–-]?\s*", re.I)


def _vocabulary(lines: list[Line]) -> set[str]:
    return words_of("\n".join(ln.text for ln in lines))


_LINK = r"(?:https?://|doi\.org/|doi:\s?|10\.\d{4,9}/)\S*"


def join_lines(lines: list[str], vocabulary: set[str] = frozenset()) -> str:
    """Join printed lines into running text, undoing line-break hyphenation and URL breaks.

    Each decision looks only at the end of the line before (kept as its own piece), so a paragraph
    of thousands of lines costs no more per line than one of three."""
    pieces: list[str] = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if not pieces:
            pieces.append(line)
            continue
        prev = pieces[-1]
        m = re.search(r"([^\W\d_]+)-$", prev)
        first = line.split(" ", 1)[0]
        if m and first[:1].islower() and not re.search(r"\S+/\S*-$", prev):
            word = re.match(r"[^\W\d_]+", first)
            right = word.group(0) if word else first
            joined = join_line_hyphen(m.group(1), right, vocabulary)
            pieces[-1] = prev[: m.start()] + joined + line[len(right):]
        elif re.search(r"[^\W\d_]-$", prev) and first[:1].isupper():
            pieces.append(line)  # a hyphenated name broken at its hyphen: "Ben-" + "David"
        elif re.search(r"\d\s?[-–—]$", prev) and first[:1].isdigit():
            pieces.append(line)  # a page range broken after its dash: "3972–" + "4000"
        elif re.search(rf"{_LINK}[/_-]$", prev) or (re.search(r"\bhttps?:$", prev) and line.startswith("//")) or (
                re.search(rf"{_LINK}\.?$", prev) and re.match(r"[\da-z/._-]", line)):
            pieces[-1] = prev + line  # a URL or DOI broken across lines has no space in it
        else:
            pieces.append(" " + line)
    return clean_text("".join(pieces))


def _paragraphs(lines: list[Line], vocabulary: set[str], removed: list[Line] = ()) -> list[str]:
    """Group consecutive body lines into paragraphs by vertical gaps and short last lines. The space
    left by a removed line (a footnote or float amid the text) does not part a sentence running on."""
    if not lines:
        return []
    holes: dict = {}
    for ln in removed:
        holes.setdefault((ln.page, ln.column), []).append(ln.y0)
    for ys in holes.values():
        ys.sort()
    gaps = [b.y0 - a.y0 for a, b in zip(lines, lines[1:]) if a.page == b.page and a.column == b.column
            and 0 < b.y0 - a.y0 < 3 * a.size]
    step = statistics.median(gaps) if gaps else lines[0].size * 1.2
    left = {c: min((ln.x0 for ln in lines if ln.column == c), default=0) for c in (0, 1, 2)}
    right = {c: max((ln.x1 for ln in lines if ln.column == c), default=0) for c in (0, 1, 2)}
    paras, cur = [], [lines[0].marked]
    for prev, ln in zip(lines, lines[1:]):
        same_flow = prev.page == ln.page and prev.column == ln.column
        short = prev.x1 < right[prev.column] - 3 * prev.size
        ends = prev.text.rstrip().endswith((".", "?", "!", ":"))
        ys = holes.get((ln.page, ln.column), ())
        if same_flow and ln.text[:1].islower() and bisect.bisect_left(ys, prev.y1) < bisect.bisect_left(ys, ln.y0):
            new = False  # a sentence running on past a float (a figure, a table, a footnote) set amid the column
        elif same_flow:
            indented = ln.x0 > left[ln.column] + 0.8 * ln.size
            new = (ln.y0 - prev.y0) > 1.35 * step or (short and ends and indented)
        else:
            new = short and ends  # a paragraph runs on into the next column unless it ended there
        if new:
            paras.append(join_lines(cur, vocabulary))
            cur = []
        cur.append(ln.marked)
    paras.append(join_lines(cur, vocabulary))
    return [p for p in paras if p]


class TitleBlock(NamedTuple):
    title: str
    authors: list[str]
    end: int  # the index of the first line after it


def _names(text: str) -> list[str]:
    text = re.sub(r"[\d*†‡§¶]+", " ", text)
    parts = re.split(r",|;|\band\b|&", text)
    names = [" ".join(p.split()) for p in parts if p.strip()]
    ok = [n for n in names if 1 < len(n.split()) <= 5 and all(w[:1].isupper() for w in n.split()
                                                              if w not in PARTICLES)]
    return ok if ok and len(ok) == len(names) else []


def _title_block(lines: list[Line], body: float, vocab: set[str], metadata: dict) -> TitleBlock:
    """The title (the largest type at the start of the first page), the authors (the lines after it
    set alike, read as names; a list of names may wrap) and where the block ends.
    The PDF's metadata fills in what the layout does not show."""
    i, title, authors = 0, "", []
    first = [ln for ln in lines[:40] if ln.page == lines[0].page] if lines else []
    biggest = max((ln.size for ln in first), default=body)
    if biggest >= body + 1.5:
        while i < len(lines) and lines[i].size < biggest - 0.2 and i < 15:
            i += 1
        start = i
        while i < len(lines) and abs(lines[i].size - biggest) <= 0.2:
            i += 1
        if _FIRST_SECTION.match(lines[start].text) and zones.is_heading(lines[start], body):
            i = 0
        else:
            title = join_lines([ln.text for ln in lines[start:i]], vocab)
    block: list[Line] = []
    while i + len(block) < len(lines) and len(block) < 6:
        ln = lines[i + len(block)]
        if (block and (ln.size != block[0].size or ln.bold != block[0].bold)) or ln.bold and ln.size <= body \
                or HEADING_NUMBER.match(ln.text) or ln.text.lower().startswith("abstract"):
            break
        block.append(ln)
    authors = _names(join_lines([ln.text for ln in block], vocab)) if block else []
    if authors:
        i += len(block)
    title = title or clean_text(metadata.get("title") or "")
    authors = authors or _names(clean_text(metadata.get("author") or ""))
    return TitleBlock(title, authors, i)


# How far (pt) a front line's size may be from the running text's and still be running text, in a
# paper without headings.
_RUNNING_TEXT_SPREAD = 0.6


def _abstract_and_loose(front: list[Line], body: float) -> tuple[list[Line], list[Line]]:
    """The front zone's abstract (from the line that starts with 'Abstract', or a structured abstract's
    first label, on) and the running text before it, the body of a paper without headings."""
    at = next((n for n, ln in enumerate(front) if ln.text.strip().lower().startswith("abstract")), None)
    if at is None:  # 'Background: …' near the top, without the word 'Abstract'
        at = next((n for n, ln in enumerate(front[:_ABSTRACT_LABEL_WITHIN]) if zones.starts_abstract(ln)), len(front))
    return front[at:], [ln for ln in front[:at] if abs(ln.size - body) < _RUNNING_TEXT_SPREAD]


def _abstract(lines: list[Line], vocab: set[str]) -> str:
    return _ABSTRACT.sub("", join_lines([ln.text for ln in lines], vocab), count=1) if lines else ""


def _sections(sections: list[Section], vocab: set[str], removed: list[Line]) -> list[TextSection]:
    """Each section's paragraphs; a section with none (a heading alone) is left out."""
    out = [TextSection(s.heading, _paragraphs(s.lines, vocab, removed)) for s in sections]
    return [s for s in out if s.paragraphs]


# How an unlabelled entry begins: 'Smith, J.', 'Smith JA,', 'van der Berg, A.', 'World Health Organization.'
_NAME_START = re.compile(rf"^(?:{PARTICLE}\s)*[A-Z][\w'’\-]+(?:,\s[A-Z]\.|\s[A-Z]{{1,3}}[,.]|"
                         r"\s[A-Z][\w'’\-]+[,.])")


def _line_step(lines: list[Line]) -> float:
    """The usual distance from one line to the next in a column (0 when no two lines share one)."""
    steps = [b.y0 - a.y0 for a, b in zip(lines, lines[1:]) if a.page == b.page and a.column == b.column
             and b.y0 > a.y0]
    return statistics.median(steps) if steps else 0


def _split_at_labels(lines: list[Line], texts: list[str], numbers: list[int | None], step: float) -> list[list[str]]:
    """A line that starts with the next label opens an entry (a label or three may be lost)."""
    entries: list[list[str]] = []
    label_x: dict = {}  # where the labels start, per column (a lost label must not swallow the rest)
    for ln, n in zip(lines, numbers):
        if n is not None:
            label_x[(ln.page, ln.column)] = min(label_x.get((ln.page, ln.column), ln.x0), ln.x0)
    expected, closed = None, False
    for k, (text, n) in enumerate(zip(texts, numbers)):
        prev = lines[k - 1] if k else None
        ln = lines[k]
        skipped = expected is not None and n is not None and expected < n <= expected + 3 \
            and ln.x0 <= label_x[(ln.page, ln.column)] + 1.5 * ln.size
        if n is not None and (expected is None or n == expected or skipped):
            entries.append([text])
            expected, closed = n + 1, False
        elif entries:
            # Far below the line before (a footnote, an address block after the list) is not part
            # of the entry; the entry may go on in the next column.
            same_column = prev is not None and (prev.page, prev.column) == (lines[k].page, lines[k].column)
            closed = (closed and same_column) or (same_column and lines[k].y0 - prev.y0 > 1.5 * step)
            if not closed:
                entries[-1].append(text)
    return entries


def _split_at_indents(lines: list[Line], texts: list[str], step: float) -> list[list[str]]:
    """Without labels: a line at the column's left edge after a hanging-indented one opens an entry,
    or (with no hanging indent) a line after extra space."""
    entries: list[list[str]] = []
    lefts: dict = {}
    for ln in lines:
        key = (ln.page, ln.column)
        lefts[key] = min(lefts.get(key, ln.x0), ln.x0)
    hanging = sum(ln.x0 > lefts[(ln.page, ln.column)] + 2 for ln in lines) >= max(1, len(lines) // 5)
    for k, (ln, text) in enumerate(zip(lines, texts)):
        prev = lines[k - 1] if k else None
        spaced = prev is not None and prev.page == ln.page and prev.column == ln.column \
            and ln.y0 - prev.y0 > 1.3 * step
        at_left = ln.x0 <= lefts[(ln.page, ln.column)] + 2
        moved = prev is not None and (prev.page, prev.column) != (ln.page, ln.column)
        if not entries or (at_left if hanging else spaced or (moved and prev.text.rstrip().endswith("."))):
            entries.append([text])
        else:
            entries[-1].append(text)
    return entries


def _split_at_names(texts: list[str]) -> list[list[str]]:
    """Neither hanging indents nor space between entries: an entry starts with a name after a line
    that ended one ("... 45–67." / "Smith, J. A., ..." or "Smith JA, ...")."""
    entries: list[list[str]] = []
    for k, text in enumerate(texts):
        ended = k and re.search(r"[.)]\s*$", texts[k - 1])
        if not entries or (ended and _NAME_START.match(text)):
            entries.append([text])
        else:
            entries[-1].append(text)
    return entries


def _split_entries(lines: list[Line]) -> list[list[str]]:
    """The reference zone's lines, grouped into entries: by their labels ([n], n., (n), n) when most
    have one, else by hanging indents or space between entries, else by where names start."""
    texts = [entry_text(ln) for ln in lines]
    numbers = [label_number(t) for t in texts]
    step = _line_step(lines)
    if sum(n is not None for n in numbers) >= max(1, len(lines) // 6):
        return _split_at_labels(lines, texts, numbers, step)
    entries = _split_at_indents(lines, texts, step)
    if len(entries) == 1 and len(lines) > 4:
        entries = _split_at_names(texts)
    return entries


def _reference_strings(lines: list[Line], vocab: set[str]) -> list[str]:
    return [join_lines(e, vocab) for e in _split_entries(lines)]


def structure(pages: list[list[Line]], metadata: dict) -> Paper:
    """Title, authors, abstract, sections and reference entries from the ordered lines: the title
    block first, then the other lines into zones, then each zone read by its own step."""
    lines = [ln for p in pages for ln in p]
    body = running_text_size(lines)
    vocab = _vocabulary(lines)
    head = _title_block(lines, body, vocab, metadata)
    found = zones.classify(lines, body, head.end)
    abstract, loose = _abstract_and_loose(found.front, body)
    removed = found.floats + found.footnotes
    sections = _sections(found.body + found.back, vocab, removed)
    if not sections and loose:
        sections = [TextSection("", _paragraphs(loose, vocab, removed))]
    return Paper(head.title, head.authors, _abstract(abstract, vocab), sections,
                 _reference_strings(found.references, vocab))


# --- JATS -------------------------------------------------------------------------------------------

def _first_author_and_year(pieces: list[jats.Piece]) -> tuple[str, str]:
    surname = year = ""
    for p in pieces:
        if isinstance(p, jats.El) and p.tag == "string-name" and not surname:
            surname = next(("".join(c.content) for c in p.content if isinstance(c, jats.El) and c.tag == "surname"), "")
        elif isinstance(p, jats.El) and p.tag == "year" and not year:
            year = "".join(p.content)[:4]
    return surname, year


def to_jats(paper: Paper):
    article = jats.new_article(paper.title, paper.authors, paper.abstract)
    refs, entries, used = [], [], set()
    for k, raw in enumerate(paper.references, 1):
        label, text = split_label(raw)
        digits = re.sub(r"\D", "", label)
        number = int(digits) if digits else None
        ref_id = f"ref{number}" if number is not None and f"ref{number}" not in used else f"ref{k}"
        used.add(ref_id)
        pieces = parse_reference(raw)
        refs.append((ref_id, pieces))
        surname, _ = _first_author_and_year(pieces)
        authors = citations.author_count(pieces)
        if SAME_AUTHORS.match(text) and entries:
            # '———. 1959. Title': the authors of the entry before, for finding it from '(Heady 1959)'.
            surname, authors = entries[-1].first_author, entries[-1].authors
            text = f"{surname} {text}"
        entries.append(citations.Entry(ref_id, number, citations.fold(text), citations.fold(surname), authors))
    index = citations.ReferenceIndex(entries)
    paragraphs = [p for _, ps in paper.sections for p in ps]
    linked = iter(citations.link_paper(paragraphs, index))
    for heading, ps in paper.sections:
        sec = jats.add_section(article, heading)
        for _ in ps:
            jats.add_paragraph(sec, next(linked))
    for ref_id, pieces in refs:
        jats.add_reference(article, ref_id, pieces)
    return article


def extract(path: str | Path):
    """PDF -> JATS article element. Raises ExtractionError for a PDF that cannot be used."""
    doc = open_pdf(path)
    try:
        texts = [page_text(page) for page in doc]
        t1 = t1_fonts(texts)  # a font's encoding shows on some page, its dashes on any
        pages = [page_lines(page, n, text, t1) for n, (page, text) in enumerate(zip(doc, texts, strict=True))]
        heights = [page.rect.height for page in doc]
        metadata = dict(doc.metadata or {})
    finally:
        doc.close()
    if not any(ln.text.strip() for p in pages for ln in p):
        raise ExtractionError("no extractable text (a scanned or image-only PDF?)")
    body = running_text_size([ln for p in pages for ln in p])
    pages = drop_running_text(pages, heights, clean_text(metadata.get("title") or ""), body)
    pages = drop_footnote_marks(pages, heights, body)
    paper = structure(pages, metadata)
    if not paper.sections and not paper.references:
        raise ExtractionError("no body text or references found in the PDF's text")
    return to_jats(paper)
