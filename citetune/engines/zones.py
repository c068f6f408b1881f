"""Zones: each line of a paper, after its title block, classified as front matter, body, float,
reference list, footnote or back matter, in one pass in reading order (CERMINE's zone
classification, GROBID's segmentation). The built-in engine then reads each zone on its own.

front       after the title block, before the first section heading: the abstract, or the text of a
            paper without headings
body        the sections before the reference list, each with its heading
floats      lines set smaller than the running text inside a section: captions, table cells, footnotes
references  the lines of the reference list, from its heading (or, without one, from where its labels
            1, 2, 3, … start)
footnotes   a footnote at the foot of a column of references
back        the sections after the reference list: appendices, methods, acknowledgements
affiliations the authors' names and addresses printed after the reference list (JSS's "Affiliation:")
"""

from __future__ import annotations

import re
import statistics
import unicodedata
from typing import NamedTuple

from citetune.engines.layout import SUPERSCRIPT, Line, body_size, plain
from citetune.text import clean_text

HEADING_NUMBER = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[IVX]+\.|[A-H](?:\.\d+)*\.?)\s+(?=\S)")
_REFERENCES = re.compile(r"^(?:references?|bibliography|literature cited|literature|works cited|reference list|"
                         r"references and notes|notes and references|references cited|cited literature)$", re.I)
# Sections that may follow the reference list (Nature puts Methods there, with a second list).
_AFTER_REFERENCES = re.compile(
    r"^(?:appendix|appendices|supplementary|supporting information|acknowledg|methods|materials and methods|"
    r"online methods|author contributions?|author information|competing interests?|conflicts? of interest|"
    r"declarations?|data availability|code availability|data and code availability|funding|"
    r"additional information|extended data|ethics|abbreviations|tables?|figures?|figure legends|figure captions|"
    r"tables and figures|affiliations?|authors'? affiliations?|authors'? addresses|addresses|about the authors?|"
    r"correspondence)\b", re.I)
# Labels of a structured abstract ("Background: … Methods: …"), which may look like headings.
_ABSTRACT_LABEL = re.compile(
    r"^(?:background|context|introduction|objectives?|aims?|purpose|motivation|methods?|methodology|design|"
    r"setting|participants|patients|interventions?|measurements?|main outcome measures?|results?|findings|"
    r"conclusions?|interpretation|significance|limitations|discussion|summary|keywords?|key words)\b", re.I)
# Labels that may be in a structured abstract but do not open one: they follow it, or open the body.
_NOT_OPENING = re.compile(r"^(?:introduction|discussion|keywords?|key words)$", re.IGNORECASE)
# How a paper's first section is named: it ends the front matter even when not set in bold.
_FIRST_SECTION = re.compile(r"^(?:introduction|background|motivation|overview)$", re.I)
# How a footnote or author note begins: a mark (raised number, symbol or letter) or what it says.
_FOOTNOTE_START = re.compile(r"^\s*(?:[*†‡§¶‖]|[a-z]\s?(?=[A-Z])|\d{1,2}\s?(?=[A-Z])|"
                             r"(?i:corresponding author|e-?mail|present address|current address|"
                             r"these authors|received|accepted|published online|©|copyright))")
_APPENDIX_NUMBER = re.compile(r"^[A-H](?:\.\d+)*\.?\s+[A-Z]")  # "A Proofs", "B.1 Data"
# Labels of reference entries: [1]  [1].  [1] -  1.  (1)  and a bare 1 before the first name; not a
# citation that opens a line of text ("[17], [18]. We have shown", "[2]–[4] show", "[5]. The results").
# After "[n]." an entry begins with a name: an initial, a surname and its comma, a particle, a
# surname and initials, or capitals.
_ENTRY_AFTER_STOP = (r"(?:[^\W\d_]\.|[^\W\d_][\w'’-]*,|(?:van|von|de|der|den|da|di|du|le|la|dos)\s|"
                     r"[^\W\d_][\w'’-]*\s+[A-Z]{1,3}\b|[A-Z]{2,}\b)")
_LABEL_START = re.compile(rf"^\s*(?:\[(\d{{1,4}})\](?!\s*(?:[,;]|[–-]\s*\[|\.\s+(?!{_ENTRY_AFTER_STOP})|\[\d))|"
                          r"(\d{1,4})\.\s|\((\d{1,4})\)\s|(\d{1,3})\s+(?=[^\W\d_]))")

# The end of a reference list: its first lines give the list's usual type; lines after the first
# entries whose type is OTHER_TYPE off it, nearly all (_TAIL_SHARE) to the end, are a tail that is no
# entry where there are _TAIL_LINES of them (addresses, a note, an appendix's text) or they stand apart.
_USUAL_FROM = 8  # the first lines: a few entries, before any tail
_TAIL_AFTER = 4  # a list keeps at least its first lines (one or two entries)
_TAIL_SHARE = 0.8  # a line of the usual type amid the tail (a URL set alike) does not end it
_TAIL_LINES = 3  # an address block or an appendix's text; one or two lines are an entry's end
# Type sizes (pt): a line more than SMALLER below the running text's size is set smaller (notes, a small
# abstract), as PDFs give one font sizes that differ by rounding; more than FLOAT_SMALLER below, it is set
# like a figure's text, a caption or a table; OTHER_TYPE off a size, it is another type (headings are set
# at least a point larger than their text).
SMALLER = 0.4
FLOAT_SMALLER = 1.2
OTHER_TYPE = 1.0
# Labels of a reference list that may be lost in a row (a raised label read as text, a page break).
_LABELS_LOST = 3
# A column of running text amid a labelled reference list: this many lines, nearly all in the running
# text's type (an equation or a small footnote may be among them).
_BODY_COLUMN_LINES = 4
_BODY_COLUMN_SHARE = 0.8
# How far after a structured abstract's label a section of the same name is looked for: the abstract and
# the first pages, not the whole paper.
_LABEL_SECTION_WITHIN = 80

FRONT, BODY, REFERENCES, BACK, AFFILIATIONS = "front", "body", "references", "back", "affiliations"
_AFFILIATION = re.compile(r"^(?:authors'? )?(?:affiliations?|addresses)\b", re.I)


class Section(NamedTuple):
    heading: str
    lines: list[Line]  # its running text, floats aside


class Zones(NamedTuple):
    front: list[Line]
    body: list[Section]
    floats: list[Line]
    references: list[Line]
    footnotes: list[Line]
    back: list[Section]
    affiliations: list[Line]


# --- what the lines say about themselves -----------------------------------------------------------

def heading_text(text: str) -> str:
    """'2.1 Quantized fine-tuning' -> 'Quantized fine-tuning'."""
    return HEADING_NUMBER.sub("", text.strip()).strip()


def label_number(text: str) -> int | None:
    """The number of a reference entry's label ('[12] ...', '12. ...', '(12) ...', '12 Smith ...')."""
    m = _LABEL_START.match(text)
    return int(next(g for g in m.groups() if g)) if m else None


def entry_text(ln: Line) -> str:
    """A reference line's text; a raised label at its start ('¹Smith J') becomes a bare one ('1 Smith J')."""
    m = SUPERSCRIPT.match(ln.marked.lstrip())
    return f"{m.group(1)} {plain(ln.marked.lstrip()[m.end():])}" if m and m.group(1).isdigit() else ln.text


def is_heading(ln: Line, body: float, gap: float | None = None) -> bool:
    """A section heading: short, not a sentence, and set apart: bold or larger type, or (as IEEE and
    AMS styles set them) in capitals or numbered with space above it. `gap` is the space above the
    line (None at the top of a column)."""
    text = ln.text.strip()
    words = text.split()
    if not words or len(words) > 14 or len(text) < 3:
        return False
    if text.endswith((".", ",", ";")) and not HEADING_NUMBER.fullmatch(text + " "):
        return False
    if not any(c.isalpha() for c in text) or not (text[0].isupper() or text[0].isdigit()):
        return False
    if _REFERENCES.match(heading_text(text)):
        return True
    if _LABEL_START.match(text) and not HEADING_NUMBER.match(text) and not ln.bold:
        return False
    if ln.size < body - FLOAT_SMALLER:  # bold words in a figure or a boxed abstract, set like the floats
        return False
    if ln.bold or ln.size >= body + OTHER_TYPE:
        return True
    apart = gap is None or gap > 0.5 * ln.size
    letters = [c for c in heading_text(text) if c.isalpha()]
    capitals = len(letters) >= 4 and all(c.isupper() for c in letters) and len(words) <= 8
    numbered = bool(HEADING_NUMBER.match(text)) and len(words) <= 8 and heading_text(text)[:1].isupper()
    return apart and abs(ln.size - body) < 1.5 and (capitals or numbered)


def _heading_end(lines: list[Line], k: int, body: float) -> int:
    """A heading set in bold or larger type may wrap: the index of its last line (next lines set
    alike, close below, not a new numbered heading)."""
    ln = lines[k]
    if not (ln.bold or ln.size >= body + OTHER_TYPE):
        return k
    while k + 1 < len(lines) and lines[k + 1].bold == ln.bold and abs(lines[k + 1].size - ln.size) < 0.2 \
            and 0 < lines[k + 1].y0 - lines[k].y0 < 1.6 * ln.size and not HEADING_NUMBER.match(lines[k + 1].text):
        k += 1
    return k


def _gaps(lines: list[Line]) -> list[float | None]:
    """The space above each line in its column (None at the top of a column or page)."""
    out: list[float | None] = [None]
    for a, b in zip(lines, lines[1:]):
        out.append(b.y0 - a.y1 if (a.page, a.column) == (b.page, b.column) and b.y0 > a.y0 else None)
    return out


# --- where the reference list starts ----------------------------------------------------------------

def _unheaded_references(lines: list[Line], start: int) -> int | None:
    """Where a reference list printed without a heading begins: the last line labelled 1 that the
    labels 2, 3, … follow in order to the end of the paper (an appendix may come after them)."""
    numbers = [label_number(entry_text(ln)) for ln in lines]
    for k in range(len(lines) - 1, start - 1, -1):
        if numbers[k] != 1:
            continue
        expected, found = 2, 1
        for n in numbers[k + 1:]:
            if n is not None and expected <= n <= expected + _LABELS_LOST:  # a label lost here and there
                expected, found = n + 1, found + 1
        if found >= 2 and found >= sum(n is not None for n in numbers[k:]) * 0.5:
            return k
    return None


def _references_without_heading(lines: list[Line], body: float, gaps: list[float | None], start: int) -> int | None:
    """Where the reference list starts when no heading announces it; None when one does (or there is none)."""
    headed = any(is_heading(ln, body, gaps[n]) and _REFERENCES.match(heading_text(ln.text))
                 for n, ln in enumerate(lines))
    return None if headed else _unheaded_references(lines, start)


def running_text_size(lines: list[Line]) -> float:
    """The running text's type size, counted before the reference list (often set smaller)."""
    end = next((k for k, ln in enumerate(lines) if _REFERENCES.match(heading_text(ln.text))), None)
    if end is None:
        end = _unheaded_references(lines, 0)
    return body_size(lines[:end] if end else lines)


# --- the pass --------------------------------------------------------------------------------------

def _abstract_label(lines: list[Line], k: int, body: float) -> bool:
    """A label of a structured abstract set as a heading ('Background', 'Methods:'): named like one,
    not numbered, and set like the abstract text after it, where a section heading stands out from
    its text; when the two are set alike, the section of that name comes later."""
    ln, text = lines[k], lines[k].text.strip()
    name = heading_text(text).rstrip(":").lower()
    if not _ABSTRACT_LABEL.match(name) or HEADING_NUMBER.match(text):
        return False
    if text.endswith(":"):
        return True
    after = lines[k + 1] if k + 1 < len(lines) else None
    if after is None or ln.size > after.size + 0.5:
        return False
    return after.size < body - SMALLER or any(
        o.bold == ln.bold and heading_text(o.text.strip()).lower() == name for o in lines[k + 1:k + _LABEL_SECTION_WITHIN])


def starts_abstract(ln: Line) -> bool:
    """The first line of an abstract: 'Abstract', or a structured abstract's run-in label ('Background: …'),
    the whole of what comes before the colon; a paper's keywords, introduction or discussion start none."""
    text = ln.text.strip()
    label = re.match(r"([^\W\d_][\w ]{0,30}):", text)
    name = label.group(1).strip() if label else ""  # "Keywords : …" as "Keywords: …"
    return text.lower().startswith("abstract") or bool(
        name and _ABSTRACT_LABEL.fullmatch(name) and not _NOT_OPENING.match(name))


def _opens_section(lines: list[Line], k: int, body: float, gap: float | None, zone: str, in_abstract: bool) -> bool:
    """A heading that opens a section (or the reference list). In the front matter, neither
    'Abstract' nor a structured abstract's labels do; before the abstract only a bold heading or the
    usual first section ('1 Introduction', 'BACKGROUND') does, as a plain capitalised or numbered
    line there is an affiliation or a byline; once the abstract has begun, any heading ends it."""
    ln = lines[k]
    text = ln.text.strip()
    if not is_heading(ln, body, gap):
        return False
    if _REFERENCES.match(heading_text(text)) or zone != FRONT:
        return True
    if text.lower().startswith("abstract") or _abstract_label(lines, k, body):
        return False
    return ln.bold or in_abstract or bool(_FIRST_SECTION.match(heading_text(text)))


def _footnotes(lines: list[Line], body: float) -> set[int]:
    """Which lines are footnotes or author notes: a run of lines set smaller than the running text,
    low on the page, from one that opens with a footnote's mark or words ('* Corresponding author',
    '¹ Department of …') while the type stays small, in its column."""
    middle: dict[int, tuple[float, float]] = {}  # page -> top and bottom of its text
    for ln in lines:
        top, bottom = middle.get(ln.page, (ln.y0, ln.y1))
        middle[ln.page] = (min(top, ln.y0), max(bottom, ln.y1))
    found: set[int] = set()
    k = 0
    while k < len(lines):
        ln = lines[k]
        top, bottom = middle[ln.page]
        if ln.size < body - SMALLER and ln.y0 > (top + bottom) / 2 and (
                SUPERSCRIPT.match(ln.marked.lstrip()) or _FOOTNOTE_START.match(ln.text)):
            while k < len(lines) and lines[k].size < body - SMALLER and (lines[k].page, lines[k].column) == (
                    ln.page, ln.column):
                found.add(k)
                k += 1
            continue
        k += 1
    return found


def _back_heading(ln: Line, body: float) -> str | None:
    """The name of a section that follows the reference list ('Appendix', 'A Proofs', 'B.1 Data',
    'Methods'); None for a line of the list."""
    text = unicodedata.normalize("NFKC", ln.text.strip())  # 'Aﬃliation:' set with a ligature
    after = _AFTER_REFERENCES.match(heading_text(text)) or _APPENDIX_NUMBER.match(text)
    set_apart = ln.bold or ln.size >= body + OTHER_TYPE
    return heading_text(text) if after and set_apart and is_heading(ln, body) else None


def _reference_or_footnote(ln: Line, zones: Zones, footnote_column: tuple | None) -> tuple | None:
    """File a line of the reference list. A line opening with a raised mark, in a list whose entries
    have none, starts a footnote: the rest of its column is the footnote's. Returns the (page,
    column) the current footnote fills."""
    if SUPERSCRIPT.match(ln.marked.lstrip()) and zones.references \
            and not SUPERSCRIPT.match(zones.references[0].marked.lstrip()):
        footnote_column = (ln.page, ln.column)
    (zones.footnotes if (ln.page, ln.column) == footnote_column else zones.references).append(ln)
    return footnote_column


def _last_label(numbers: list[int | None]) -> int | None:
    """The last label of the list's sequence 1, 2, 3, … (a label or three may be lost)."""
    last = None
    for n in numbers:
        if n is not None and (n == 1 if last is None else last < n <= last + 1 + _LABELS_LOST):
            last = n
    return last


def _body_column(lines: list[Line], k: int, references: list[Line], body: float) -> int:
    """How many lines from lines[k] on are running text in a column of their own amid a labelled
    reference list (its last page shared with the end of the body): four or more lines in one
    column, in the running text's type, none labelled as the list's next entries. 0 when lines[k]
    does not start such a column."""
    if not references or (references[-1].page, references[-1].column) == (lines[k].page, lines[k].column):
        return 0
    last = _last_label([label_number(entry_text(ln)) for ln in references])
    if last is None or last < 2:
        return 0
    end = k
    while end < len(lines) and (lines[end].page, lines[end].column) == (lines[k].page, lines[k].column):
        end += 1
    column = lines[k:end]
    if len(column) < _BODY_COLUMN_LINES or sum(ln.size >= body - SMALLER for ln in column) < _BODY_COLUMN_SHARE * len(column):
        return 0
    if any(n is not None and last < n <= last + 1 + _LABELS_LOST for n in (label_number(entry_text(ln)) for ln in column)):
        return 0
    return len(column)


def _split_off_tail(zones: Zones) -> None:
    """Lines at the end of the reference list set, nearly all, in another type than its first entries
    are not entries: smaller, the authors' addresses or a note (amsart prints them there); larger,
    the running text or code of an appendix that follows without a heading set apart. A tail is
    several lines, or stands apart below the list; a single line in another type (an entry's last
    line, a URL) is the entry's. Each tail line set off is filed by its type, and a line set like the
    entries amid the tail (an appendix's bold heading, an e-mail in another font) with the lines above it."""
    refs = zones.references
    if len(refs) < _TAIL_AFTER:
        return
    usual = statistics.median(ln.size for ln in refs[:_USUAL_FROM])
    off = [abs(ln.size - usual) > OTHER_TYPE for ln in refs]
    k = next((k for k in range(_TAIL_AFTER, len(refs)) if off[k] and sum(off[k:]) >= _TAIL_SHARE * (len(refs) - k)
              and (len(refs) - k >= _TAIL_LINES or _apart(refs[k - 1], refs[k]))), len(refs))
    smaller: list[Line] = []
    running: list[Line] = []
    into = smaller
    for ln, o in zip(refs[k:], off[k:]):  # the tail opens with a line set off
        into = (smaller if ln.size < usual else running) if o else into  # one set alike goes with its block
        into.append(ln)
    del refs[k:]
    zones.affiliations.extend(smaller)
    if running:
        zones.back.insert(0, Section("", running))


def _apart(above: Line, ln: Line) -> bool:
    """A line set below the one above it with a blank line or more between them, in one column."""
    return (above.page, above.column) == (ln.page, ln.column) and ln.y0 - above.y1 > ln.size


def classify(lines: list[Line], body: float, start: int) -> Zones:
    """The zones of lines[start:] (lines[:start] is the title block), `body` the running text's size."""
    zones = Zones([], [], [], [], [], [], [])
    gaps = _gaps(lines)
    unheaded = _references_without_heading(lines, body, gaps, start)
    notes = _footnotes(lines, body)
    zone, section, footnote_column, in_abstract = FRONT, None, None, False
    k = start
    while k < len(lines):
        if k == unheaded:
            zone = REFERENCES
        ln = lines[k]
        if zone == AFFILIATIONS:
            name = _back_heading(ln, body)
            if name is None:
                zones.affiliations.append(ln)
            else:
                zone, section = BACK, Section(name, [])
                zones.back.append(section)
            k += 1
            continue
        if zone == REFERENCES:
            running = _body_column(lines, k, zones.references, body)
            if running:
                column = lines[k:k + running]
                zones.back.append(Section("", [x for x in column if x.size >= body - FLOAT_SMALLER]))
                zones.floats.extend(x for x in column if x.size < body - FLOAT_SMALLER)
                k += running
                continue
            name = _back_heading(ln, body)
            if name is None:
                footnote_column = _reference_or_footnote(ln, zones, footnote_column)
            elif _AFFILIATION.match(name):
                zone = AFFILIATIONS
            else:
                zone, section = BACK, Section(name, [])
                zones.back.append(section)
            k += 1
            continue
        if k in notes:
            zones.footnotes.append(ln)
            k += 1
            continue
        if _opens_section(lines, k, body, gaps[k], zone, in_abstract):
            end = _heading_end(lines, k, body)
            name = heading_text(clean_text(" ".join(x.text.strip() for x in lines[k:end + 1])))
            k = end + 1
            if _REFERENCES.match(name):
                zone = REFERENCES
            else:
                zone = BACK if zone == BACK else BODY
                section = Section(name, [])
                (zones.back if zone == BACK else zones.body).append(section)
            continue
        k += 1
        if zone == FRONT:
            in_abstract = in_abstract or starts_abstract(ln) or (k > 0 and _abstract_label(lines, k - 1, body))
            zones.front.append(ln)
        elif ln.size < body - FLOAT_SMALLER:  # captions, table cells, footnotes: set smaller than the running text
            zones.floats.append(ln)
        else:
            section.lines.append(ln)
    _split_off_tail(zones)
    return zones
