"""The built-in engine: PDF -> JATS with PyMuPDF, from the positions and fonts of the text spans.

Layout first (columns, visual lines, running headers and page numbers dropped), then structure
(title, authors, abstract, section headings, paragraphs, the reference list), then the in-text
citation groups are linked to the reference entries.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import pymupdf

from citetune import jats
from citetune.engines import citations
from citetune.engines.layout import (
    SUPERSCRIPT,
    Line,
    body_size,
    drop_footnote_marks,
    drop_running_text,
    page_lines,
    plain,
)
from citetune.engines.references import parse_reference
from citetune.pdf_check import pdf_problem
from citetune.text import (
    SAME_AUTHORS,
    clean_text,
    join_line_hyphen,
    split_label,
    words_of,
)
from citetune.words import PARTICLE


class ExtractionError(Exception):
    """This PDF cannot be extracted; the message says why (empty, not a PDF, encrypted, no text)."""


@dataclass
class Paper:
    title: str = ""
    authors: list[str] = field(default_factory=list)
    abstract: str = ""
    sections: list[tuple[str, list[str]]] = field(default_factory=list)  # (heading, paragraphs)
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


# --- structure -----------------------------------------------------------------------------------

_HEADING_NUMBER = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[IVX]+\.|[A-H](?:\.\d+)*\.?)\s+(?=\S)")
_REFERENCES = re.compile(r"^(?:references?|bibliography|literature cited|literature|works cited|reference list|"
                         r"references and notes|notes and references|references cited|cited literature)$", re.I)
# Sections that may follow the reference list (Nature puts Methods there, with a second list).
_AFTER_REFERENCES = re.compile(
    r"^(?:appendix|appendices|supplementary|supporting information|acknowledg|methods|materials and methods|"
    r"online methods|author contributions?|author information|competing interests?|conflicts? of interest|"
    r"declarations?|data availability|code availability|data and code availability|funding|"
    r"additional information|extended data|ethics|abbreviations|tables?|figures?|figure legends|figure captions|"
    r"tables and figures)\b", re.I)
_ABSTRACT = re.compile(r"^\s*abstract\s*[.:—–-]?\s*", re.I)
# Labels of reference entries: [1]  1.  (1)  and a bare 1 before the first name.
_LABEL_START = re.compile(r"^\s*(?:\[(\d{1,4})\]|(\d{1,4})\.\s|\((\d{1,4})\)\s|(\d{1,3})\s+(?=[^\W\d_]))")


def heading_text(text: str) -> str:
    """'2.1 Quantized fine-tuning' -> 'Quantized fine-tuning'."""
    return _HEADING_NUMBER.sub("", text.strip()).strip()


def _label_number(text: str) -> int | None:
    m = _LABEL_START.match(text)
    return int(next(g for g in m.groups() if g)) if m else None


def _is_heading(ln: Line, body: float, gap: float | None = None) -> bool:
    """A section heading: short, not a sentence, and set apart: bold or larger type, or (as IEEE and
    AMS styles set them) in capitals or numbered with space above it. `gap` is the space above the
    line (None at the top of a column)."""
    text = ln.text.strip()
    words = text.split()
    if not words or len(words) > 14 or len(text) < 3:
        return False
    if text.endswith((".", ",", ";")) and not _HEADING_NUMBER.fullmatch(text + " "):
        return False
    if not any(c.isalpha() for c in text) or not (text[0].isupper() or text[0].isdigit()):
        return False
    if _REFERENCES.match(heading_text(text)):
        return True
    if _LABEL_START.match(text) and not _HEADING_NUMBER.match(text) and not ln.bold:
        return False
    if ln.bold or ln.size >= body + 1.0:
        return True
    apart = gap is None or gap > 0.5 * ln.size
    letters = [c for c in heading_text(text) if c.isalpha()]
    capitals = len(letters) >= 4 and all(c.isupper() for c in letters) and len(words) <= 8
    numbered = bool(_HEADING_NUMBER.match(text)) and len(words) <= 8 and heading_text(text)[:1].isupper()
    return apart and abs(ln.size - body) < 1.5 and (capitals or numbered)


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
        elif re.search(rf"{_LINK}[/_-]$", prev) or (
                re.search(rf"{_LINK}\.?$", prev) and re.match(r"[\da-z/._-]", line)):
            pieces[-1] = prev + line  # a URL or DOI broken across lines has no space in it
        else:
            pieces.append(" " + line)
    return clean_text("".join(pieces))


def _paragraphs(lines: list[Line], vocabulary: set[str]) -> list[str]:
    """Group consecutive body lines into paragraphs by vertical gaps and short last lines."""
    if not lines:
        return []
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
        if same_flow:
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


# How an unlabelled entry begins: 'Smith, J.', 'Smith JA,', 'van der Berg, A.', 'World Health Organization.'
_NAME_START = re.compile(rf"^(?:{PARTICLE}\s)*[A-Z][\w'’\-]+(?:,\s[A-Z]\.|\s[A-Z]{{1,3}}[,.]|"
                         r"\s[A-Z][\w'’\-]+[,.])")


def _entry_text(ln: Line) -> str:
    """A reference line's text; a raised label at its start ('¹Smith J') becomes a bare one ('1 Smith J')."""
    m = SUPERSCRIPT.match(ln.marked.lstrip())
    return f"{m.group(1)} {plain(ln.marked.lstrip()[m.end():])}" if m and m.group(1).isdigit() else ln.text


def _split_entries(lines: list[Line]) -> list[list[str]]:
    """Reference entries: a line that starts with the next label ([n], n., (n), n) opens a new entry;
    without labels, a line at the column's left edge after a hanging-indented one does, or (with no
    hanging indent) a line after extra space."""
    texts = [_entry_text(ln) for ln in lines]
    numbers = [_label_number(t) for t in texts]
    entries: list[list[str]] = []
    steps = [b.y0 - a.y0 for a, b in zip(lines, lines[1:]) if a.page == b.page and a.column == b.column
             and b.y0 > a.y0]
    step = statistics.median(steps) if steps else 0
    if sum(n is not None for n in numbers) >= max(1, len(lines) // 6):
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
    if len(entries) == 1 and len(lines) > 4:
        # Neither hanging indents nor space between entries: an entry starts with a name after a
        # line that ended one ("... 45–67." / "Smith, J. A., ..." or "Smith JA, ...").
        entries = []
        for k, text in enumerate(texts):
            ended = k and re.search(r"[.)]\s*$", texts[k - 1])
            if not entries or (ended and _NAME_START.match(text)):
                entries.append([text])
            else:
                entries[-1].append(text)
    return entries


def _names(text: str) -> list[str]:
    text = re.sub(r"[\d*†‡§¶]+", " ", text)
    parts = re.split(r",|;|\band\b|&", text)
    names = [" ".join(p.split()) for p in parts if p.strip()]
    ok = [n for n in names if 1 < len(n.split()) <= 5 and all(w[:1].isupper() for w in n.split()
                                                              if w not in {"de", "van", "von", "der", "la"})]
    return ok if ok and len(ok) == len(names) else []


def _title_and_authors(lines: list[Line], body: float, vocab: set[str], metadata: dict) -> tuple[str, list[str], int]:
    """The title (the largest type at the start of the first page), the authors (the lines after it
    set alike, read as names; a list of names may wrap) and the index of the first line after them.
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
        title = join_lines([ln.text for ln in lines[start:i]], vocab)
    block: list[Line] = []
    while i + len(block) < len(lines) and len(block) < 6:
        ln = lines[i + len(block)]
        if (block and (ln.size != block[0].size or ln.bold != block[0].bold)) or ln.bold and ln.size <= body \
                or _HEADING_NUMBER.match(ln.text) or ln.text.lower().startswith("abstract"):
            break
        block.append(ln)
    authors = _names(join_lines([ln.text for ln in block], vocab)) if block else []
    if authors:
        i += len(block)
    title = title or clean_text(metadata.get("title") or "")
    authors = authors or _names(clean_text(metadata.get("author") or ""))
    return title, authors, i


def _heading_end(lines: list[Line], k: int, body: float) -> int:
    """A heading set in bold or larger type may wrap: the index of its last line (next lines set
    alike, close below, not a new numbered heading)."""
    ln = lines[k]
    if not (ln.bold or ln.size >= body + 1.0):
        return k
    while k + 1 < len(lines) and lines[k + 1].bold == ln.bold and abs(lines[k + 1].size - ln.size) < 0.2 \
            and 0 < lines[k + 1].y0 - lines[k].y0 < 1.6 * ln.size and not _HEADING_NUMBER.match(lines[k + 1].text):
        k += 1
    return k


def _gaps(lines: list[Line]) -> list[float | None]:
    """The space above each line in its column (None at the top of a column or page)."""
    out: list[float | None] = [None]
    for a, b in zip(lines, lines[1:]):
        out.append(b.y0 - a.y1 if (a.page, a.column) == (b.page, b.column) and b.y0 > a.y0 else None)
    return out


def _unheaded_references(lines: list[Line], start: int) -> int | None:
    """Where a reference list printed without a heading begins: the last line labelled 1 that the
    labels 2, 3, … follow in order to the end of the paper (an appendix may come after them)."""
    numbers = [_label_number(_entry_text(ln)) for ln in lines]
    for k in range(len(lines) - 1, start - 1, -1):
        if numbers[k] != 1:
            continue
        expected, found = 2, 1
        for n in numbers[k + 1:]:
            if n is not None and expected <= n <= expected + 3:  # a label lost here and there
                expected, found = n + 1, found + 1
        if found >= 2 and found >= sum(n is not None for n in numbers[k:]) * 0.5:
            return k
    return None


def _body_size(lines: list[Line]) -> float:
    """The running text's type size, counted before the reference list (often set smaller)."""
    end = next((k for k, ln in enumerate(lines) if _REFERENCES.match(heading_text(ln.text))), None)
    if end is None:
        end = _unheaded_references(lines, 0)
    return body_size(lines[:end] if end else lines)


def structure(pages: list[list[Line]], metadata: dict) -> Paper:
    """Title, authors, abstract, sections and reference entries from the ordered lines."""
    lines = [ln for p in pages for ln in p]
    body = _body_size(lines)
    vocab = _vocabulary(lines)
    paper = Paper()
    paper.title, paper.authors, i = _title_and_authors(lines, body, vocab, metadata)

    heading, chunk, mode = None, [], "front"
    ref_lines: list[Line] = []
    footnotes = None
    abstract: list[Line] = []
    loose: list[Line] = []  # body-like text before any heading: the body of a paper without headings

    def flush():
        if mode == "body" and (chunk or heading):
            paper.sections.append((heading or "", _paragraphs(chunk, vocab)))

    gaps = _gaps(lines)
    unheaded = None if any(_is_heading(ln, body, gaps[n]) and _REFERENCES.match(heading_text(ln.text))
                           for n, ln in enumerate(lines)) else _unheaded_references(lines, i)
    k = i
    while k < len(lines):
        if k == unheaded:
            flush()
            mode = "refs"
        ln, k = lines[k], k + 1
        text = ln.text.strip()
        if mode == "refs":
            # Appendices after the references: "Appendix", "A Proofs", "B.1 Data".
            if _is_heading(ln, body) and ln.bold and (_AFTER_REFERENCES.match(heading_text(text))
                                                      or re.match(r"^[A-H](?:\.\d+)*\.?\s+[A-Z]", text)):
                mode, heading, chunk = "body", heading_text(text), []
                continue
            if SUPERSCRIPT.match(ln.marked.lstrip()) and ref_lines and not SUPERSCRIPT.match(ref_lines[0].marked.lstrip()):
                footnotes = (ln.page, ln.column)  # a footnote at the foot of a column of references: the rest of it
            if (ln.page, ln.column) != footnotes:
                ref_lines.append(ln)
            continue
        references = _REFERENCES.match(heading_text(text))
        if _is_heading(ln, body, gaps[k - 1]) and (references or not (
                mode == "front" and (text.lower().startswith("abstract") or not ln.bold))):
            flush()
            end = _heading_end(lines, k - 1, body)
            name = heading_text(clean_text(" ".join(x.text.strip() for x in lines[k - 1:end + 1])))
            k = end + 1
            if _REFERENCES.match(name):
                mode = "refs"
                continue
            mode, heading, chunk = "body", name, []
            continue
        if mode == "front":
            if text.lower().startswith("abstract") or abstract:
                abstract.append(ln)
            elif abs(ln.size - body) < 0.6:
                loose.append(ln)
            continue
        if ln.size < body - 1.2:  # footnotes, captions, table cells: set smaller than the running text
            continue
        chunk.append(ln)
    flush()
    if abstract:
        paper.abstract = _ABSTRACT.sub("", join_lines([ln.text for ln in abstract], vocab), count=1)
    paper.sections = [(h, ps) for h, ps in paper.sections if ps]
    if not paper.sections and loose:
        paper.sections = [("", _paragraphs(loose, vocab))]
    paper.references = [join_lines(e, vocab) for e in _split_entries(ref_lines)]
    return paper


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
        if SAME_AUTHORS.match(text) and entries:
            # '———. 1959. Title': the authors of the entry before, for finding it from '(Heady 1959)'.
            surname = entries[-1].first_author
            text = f"{surname} {text}"
        entries.append(citations.Entry(ref_id, number, citations.fold(text), citations.fold(surname)))
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
        pages = [page_lines(page, n) for n, page in enumerate(doc)]
        heights = [page.rect.height for page in doc]
        metadata = dict(doc.metadata or {})
    finally:
        doc.close()
    if not any(ln.text.strip() for p in pages for ln in p):
        raise ExtractionError("no extractable text (a scanned or image-only PDF?)")
    body = _body_size([ln for p in pages for ln in p])
    pages = drop_running_text(pages, heights, clean_text(metadata.get("title") or ""), body)
    pages = drop_footnote_marks(pages, heights, body)
    paper = structure(pages, metadata)
    if not paper.sections and not paper.references:
        raise ExtractionError("no body text or references found in the PDF's text")
    return to_jats(paper)
