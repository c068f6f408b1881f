"""Page layout from PyMuPDF's spans: visual lines in reading order, running headers and page numbers out.

Two-column pages are found by the empty gutter between the columns; full-width lines (a title, a
wide figure caption) split the page into bands, read top to bottom, left column before right.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import pymupdf

from citetune.ids import YEAR_DIGITS
from citetune.text import DASH, NUM

# A run of small raised digits that may be a citation ("...shown before.¹⁻³") is kept in the line's
# text between these two private-use characters; the citation linker decides what it is.
SUP_OPEN, SUP_CLOSE = "\ue000", "\ue001"
SUPERSCRIPT = re.compile(f"{SUP_OPEN}([^{SUP_CLOSE}]*){SUP_CLOSE}")
# Raised labels may be separated by commas, dashes or bare spaces ("bias¹⁴ ¹⁵").
_SUP_NUMBERS = re.compile(rf"{NUM}(?:\s*{DASH}\s*{NUM})?(?:(?:\s*[,;]\s*|\s+){NUM}(?:\s*{DASH}\s*{NUM})?)*")
# A raised label glued to the next word ("billion.⁴Many") ends the word it follows.
_GLUED = re.compile(f"{SUP_CLOSE}(?=[^\\W\\d_(])")


def _sup_label(digits: str) -> str:
    """The label as marked: no space around its commas and dashes, one between bare numbers."""
    return " ".join(re.sub(rf"\s*([,;]|{DASH})\s*", r"\1", digits).split())


def _unglue(marked: str) -> str:
    return _GLUED.sub(SUP_CLOSE + " ", marked)


def plain(text: str) -> str:
    """The text without the superscript marks (their digits kept, as printed)."""
    return text.replace(SUP_OPEN, "").replace(SUP_CLOSE, "")


@dataclass
class Line:
    page: int
    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    size: float
    bold: bool
    column: int = 0  # 0 = the only column or spanning; 1 = left; 2 = right
    marked: str = ""  # the text with possible superscript citations marked (SUP_OPEN…SUP_CLOSE)
    baseline: float = 0.0  # of the line's main type (sub- and superscripts aside)

    def __post_init__(self):
        self.marked = self.marked or self.text
        self.baseline = self.baseline or self.y1



# --- layout --------------------------------------------------------------------------------------

def _is_bold(span: dict) -> bool:
    return bool(span["flags"] & 16) or "bold" in span["font"].lower() or "black" in span["font"].lower()


def _line_text(spans: list[dict]) -> tuple[str, float]:
    """The spans' text, with runs of raised, smaller digits (not after a digit or an italic math
    letter, where they would be exponents) marked as possible superscript citations."""
    sized = [s for s in spans if s["text"].strip()]
    main = max(sized, key=lambda s: len(s["text"].strip()))["size"] if sized else 0
    baseline = max((s["origin"][1] for s in sized if s["size"] >= 0.9 * main), default=0)
    parts: list[str] = []
    run: list[dict] = []

    def close_run(before: dict | None) -> None:
        text = "".join(s["text"] for s in run)
        digits = text.strip()
        prev = "".join(parts).rstrip()[-1:] if "".join(parts).strip() else ""
        exponent = prev.isdigit() or (before is not None and before["flags"] & 2 and before["text"].strip()) \
            or UNIT_BEFORE.search("".join(parts))
        if _SUP_NUMBERS.fullmatch(digits) and not exponent:
            parts.append(SUP_OPEN + _sup_label(digits) + SUP_CLOSE + (" " if text.endswith(" ") else ""))
        else:
            parts.append(text)
        run.clear()

    before = None
    for s in spans:
        raised = s["size"] < 0.85 * main and (s["flags"] & 1 or s["origin"][1] < baseline - 0.2 * main)
        if raised and (s["text"].strip() or run):
            if not run:
                before = next((p for p in reversed(spans[:spans.index(s)]) if p["text"].strip()), None)
            run.append(s)
            continue
        if run:
            close_run(before)
        parts.append(s["text"])
    if run:
        close_run(before)
    return _unglue(_unicode_superscripts("".join(parts))), baseline


_SUPERSCRIPT_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_UNICODE_RUN = re.compile(r"(?<![\d⁰¹²³⁴⁵⁶⁷⁸⁹⁻])([⁰¹²³⁴⁵⁶⁷⁸⁹]+(?:[,–—⁻-][⁰¹²³⁴⁵⁶⁷⁸⁹]+)*)")
# A raised number after a unit is a power of it ("cm²", "m s⁻¹"), not a citation.
UNIT_BEFORE = re.compile(r"(?:\d\s?|(?<![^\W\d_]))(?:[kcmµμn]m|mol|[kMG]?Hz|[kM]?eV|[kM]?Pa)\s?$|"
                         r"\d\s?(?:[kmµμn]?[msgLKWJNÅ])\s?$")


def _unicode_superscripts(text: str) -> str:
    """Superscript digits printed as their own characters ('effect.¹²'), marked like raised ones;
    after a digit they are an exponent and stay as they are."""
    def mark(m: re.Match) -> str:
        if UNIT_BEFORE.search(text[:m.start()]):
            return m.group(0)
        return SUP_OPEN + m.group(1).translate(_SUPERSCRIPT_DIGITS) + SUP_CLOSE

    return _UNICODE_RUN.sub(mark, text)


# A TeX font in the T1 (Cork) encoding embedded without a map to Unicode gives its glyphs' codes:
# the ligatures, dashes and quotes sit where control characters are ("di\x1berent", "139\x15142").
_T1_CODES = str.maketrans({0x10: "“", 0x11: "”", 0x15: "–", 0x16: "—", 0x1B: "ff", 0x1C: "fi", 0x1D: "fl",
                           0x1E: "ffi", 0x1F: "ffl"})
# How a font shows its encoding: T1's ligature codes inside words, or OT1's (0x0B-0x0F), whose
# 0x10-0x1F are other letters (ı, ȷ, accents, œ, ø, Æ).
_T1_LIGATURE = re.compile(r"[^\W\d_][\x1b-\x1f]|[\x1b-\x1f][^\W\d_]")
_OT1_LIGATURE = re.compile(r"[^\W\d_][\x0b-\x0f]|[\x0b-\x0f][^\W\d_]")
# Math fonts use those codes for symbols of their own (Greek, relations, delimiters).
_MATH_FONT = re.compile(r"^(?:[A-Z]{6}\+)?(?:CMEX|CMSY|CMBSY|CMMI|LMMath|MSAM|MSBM|Symbol|rsfs|EUFM|EUSM|stmary|"
                        r"wasy|.*Math|.*-Ex\b)", re.I)


_TEXT_FLAGS = pymupdf.TEXTFLAGS_DICT & ~pymupdf.TEXT_PRESERVE_IMAGES


def page_text(page: pymupdf.Page) -> dict:
    """PyMuPDF's reading of one page: blocks of lines of spans."""
    return page.get_text("dict", flags=_TEXT_FLAGS)


def t1_fonts(pages: list[dict]) -> set[str]:
    """The fonts of a document that show T1 ligature codes inside words and no OT1 ones (not math fonts)."""
    text: dict[str, str] = {}
    for page in pages:
        for span in (s for block in page["blocks"] for line in block.get("lines", []) for s in line["spans"]):
            if any(ord(c) < 0x20 for c in span["text"]):
                text[span["font"]] = text.get(span["font"], "") + " " + span["text"]
    return {font for font, t in text.items()
            if _T1_LIGATURE.search(t) and not _OT1_LIGATURE.search(t) and not _MATH_FONT.match(font)}


def _decoded(span: dict, t1: set[str]) -> dict:
    """The span with T1 glyph codes read as their characters, in the document's T1 fonts."""
    if span["font"] not in t1:
        return span
    return {**span, "text": span["text"].translate(_T1_CODES)}


def _raw_lines(text: dict, number: int, t1: set[str]) -> list[Line]:
    """PyMuPDF's lines (a justified line may come as several), horizontal text only."""
    out = []
    for line in (line for block in text["blocks"] for line in block.get("lines", [])):
        if abs(line["dir"][1]) > 0.01:  # rotated text: arXiv side stamps, axis labels
            continue
        decoded = [_decoded(s, t1) for s in line["spans"]]
        spans = [s for s in decoded if s["text"].strip()]
        if not spans:
            continue
        text, baseline = _line_text(decoded)
        main = max(s["size"] for s in spans)
        spans = [s for s in spans if s["size"] >= 0.85 * main]  # raised or lowered marks aside
        chars = sum(len(s["text"].strip()) for s in spans)
        size = sum(s["size"] * len(s["text"].strip()) for s in spans) / chars
        bold = sum(len(s["text"].strip()) for s in spans if _is_bold(s)) >= 0.8 * chars
        x0, y0, x1, y1 = line["bbox"]
        out.append(Line(number, x0, y0, x1, y1, plain(text), round(size, 1), bold, marked=text, baseline=baseline))
    return out


def _gutter(lines: list[Line], width: float) -> float | None:
    """The x of the gap between two columns, if this page has two: a vertical strip in the middle
    third that (almost) no column-width line crosses, with enough text on either side. Lines as wide
    as the page (title, abstract, a wide figure's caption) or centred on it do not count."""
    # Lines centred on the page (front matter, a centred caption) are not column text either.
    narrow = [ln for ln in lines if ln.x1 - ln.x0 < 0.6 * width and abs((ln.x0 + ln.x1) / 2 - width / 2) > 0.05 * width]
    if len(narrow) < 6:
        return None
    best, best_len, run_start = None, 0.0, None
    xs = [width * 0.3 + i * 2 for i in range(int(width * 0.4 / 2))]
    for x in xs + [None]:
        crossing = x is not None and sum(1 for ln in narrow if ln.x0 < x < ln.x1)
        if x is not None and crossing <= max(1, len(narrow) // 20):
            run_start = x if run_start is None else run_start
            continue
        if run_start is not None:
            end = x if x is not None else xs[-1]
            if end - run_start > best_len:
                best, best_len = (run_start + end) / 2, end - run_start
            run_start = None
    if best is None:
        return None
    left = sum(len(ln.text) for ln in narrow if ln.x1 <= best)
    right = sum(len(ln.text) for ln in narrow if ln.x0 >= best)
    total = sum(len(ln.text) for ln in narrow)
    if left <= 0.15 * total or right <= 0.15 * total:
        return None
    # On a one-column page the narrow lines are only the short ones (a paragraph's last line, pieces
    # of a line with wide gaps); most lines among them run across the would-be gutter.
    top, bottom = min(ln.y0 for ln in narrow), max(ln.y1 for ln in narrow)
    across = sum(1 for ln in lines if ln.x0 < best - 0.03 * width and ln.x1 > best + 0.03 * width
                 and top <= ln.y0 <= bottom)
    if across > 0.3 * len(narrow):
        return None
    # A right column starts its lines at one x; words of a one-column line spread out by justification
    # (PyMuPDF gives them as separate lines) start anywhere.
    starts = Counter(round(ln.x0) for ln in narrow if ln.x0 >= best)
    aligned = sum(n for x, n in starts.items() if any(abs(x - y) <= 2 for y, m in starts.most_common(1)))
    return best if aligned >= 0.3 * sum(starts.values()) else None


def _joined(parts: list[Line], attr: str) -> str:
    text = getattr(parts[0], attr)
    for prev, cur in zip(parts, parts[1:]):
        gap = cur.x0 - prev.x1
        piece = getattr(cur, attr)
        if gap > 0.15 * cur.size and not text.endswith(" ") and not piece.startswith(" "):
            text += " "
        text += piece
    return " ".join(text.split())


def _merge_row(parts: list[Line]) -> Line:
    parts = sorted(parts, key=lambda ln: ln.x0)
    chars = [max(1, len(p.text.strip())) for p in parts]
    return Line(parts[0].page, min(p.x0 for p in parts), min(p.y0 for p in parts), max(p.x1 for p in parts),
                max(p.y1 for p in parts), _joined(parts, "text"),
                round(sum(p.size * c for p, c in zip(parts, chars)) / sum(chars), 1),
                all(p.bold for p in parts), parts[0].column, _joined(parts, "marked"),
                max(parts, key=lambda p: len(p.text)).baseline)


def _rows(lines: list[Line]) -> list[Line]:
    """Join pieces that sit on one baseline in one column into one visual line, top to bottom."""
    rows: list[list[Line]] = []
    for ln in sorted(lines, key=lambda ln: (ln.baseline, ln.x0)):
        for row in reversed(rows):  # the rows still level with this piece, in either column
            if abs(row[0].baseline - ln.baseline) > 0.35 * ln.size:
                rows.append([ln])
                break
            if row[0].column == ln.column:
                row.append(ln)
                break
        else:
            rows.append([ln])
    return [_merge_row(r) for r in rows]


def _drop_line_numbers(raw: list[Line]) -> list[Line]:
    """Without the line numbers of a preprint or review copy: bare numbers in a margin, beside the text
    (left of its left edge or right of its right edge), counting up down the page."""
    numbers = [ln for ln in raw if re.fullmatch(r"\d{1,5}", ln.text.strip())]
    if len(numbers) < 5:
        return raw
    text = [ln for ln in raw if ln not in numbers]
    if not text:
        return raw
    left, right = min(ln.x0 for ln in text), max(ln.x1 for ln in text)
    margin = [ln for ln in numbers if ln.x1 <= left + 1 or ln.x0 >= right - 1]
    ordered = [int(ln.text) for ln in sorted(margin, key=lambda ln: ln.y0)]
    rising = sum(b > a for a, b in zip(ordered, ordered[1:]))
    if len(margin) < 5 or rising < 0.8 * (len(ordered) - 1):
        return raw
    drop = {id(ln) for ln in margin}
    return [ln for ln in raw if id(ln) not in drop]


def _attach_raised(rows: list[Line]) -> list[Line]:
    """Raised small digits that the PDF keeps as a line of their own ("¹²" drawn apart from its
    sentence) go into the line they sit on, at the word they follow, marked as a possible citation."""
    out = list(rows)
    for sup in rows:
        digits = sup.text.strip()
        if not _SUP_NUMBERS.fullmatch(digits):
            continue
        middle = (sup.y0 + sup.y1) / 2
        hosts = [h for h in out if h is not sup and h.column == sup.column and sup.size < 0.85 * h.size
                 and h.y0 - 1 <= middle <= h.y1 + 1 and sup.baseline < h.baseline - 0.15 * h.size
                 and h.x0 - 1 <= sup.x0 <= h.x1 + 1.5 * h.size]
        if not hosts:
            continue
        host = min(hosts, key=lambda h: abs(h.baseline - sup.baseline))
        # Where in the host's text: its share of the line's width, moved to the end of that word.
        k = round((sup.x0 - host.x0) / max(1.0, host.x1 - host.x0) * len(host.text))
        k = len(host.text) if k >= len(host.text) else (re.search(r"[\s]|$", host.text[k:]).start() + k)
        k = min(k, len(host.text))
        while k > 0 and host.text[k - 1] == " ":
            k -= 1
        exponent = k > 0 and host.text[k - 1].isdigit()
        mark = digits if exponent else SUP_OPEN + _sup_label(digits) + SUP_CLOSE
        pos, seen = 0, 0  # k in the marked text, which has the host's text plus marks
        while pos < len(host.marked) and seen < k:
            seen += host.marked[pos] not in (SUP_OPEN, SUP_CLOSE)
            pos += 1
        glued = not exponent and _GLUED.match(SUP_CLOSE + host.marked[pos:pos + 1])
        host.marked = host.marked[:pos] + mark + (" " if glued else "") + host.marked[pos:]
        host.text = host.text[:k] + digits + (" " if glued else "") + host.text[k:]
        out.remove(sup)
    return out


def page_lines(page: pymupdf.Page, number: int, text: dict | None = None, t1: set[str] = frozenset()) -> list[Line]:
    """Visual lines of one page in reading order: full-width bands, and within each band the left
    column before the right one. `text` is page_text(page) where already read; `t1` the document's
    T1 fonts (t1_fonts)."""
    raw = _drop_line_numbers(_raw_lines(text or page_text(page), number, t1))
    gutter = _gutter(raw, page.rect.width)
    if gutter is None:
        return _attach_raised(_rows(raw))
    for ln in raw:
        # A label hanging into the gutter does not make a line span both columns.
        reach = 0.03 * page.rect.width
        ln.column = 0 if ln.x0 < gutter - reach and ln.x1 > gutter + reach else (
            1 if (ln.x0 + ln.x1) / 2 < gutter else 2)
    spanning = _attach_raised(_rows([ln for ln in raw if ln.column == 0]))
    columns = _attach_raised(_rows([ln for ln in raw if ln.column != 0]))
    ordered: list[Line] = []
    top = -1.0
    for bar in spanning + [None]:
        bottom = bar.y0 if bar is not None else float("inf")
        band = [ln for ln in columns if top <= ln.y0 < bottom]
        ordered += [ln for ln in band if ln.column == 1] + [ln for ln in band if ln.column == 2]
        if bar is not None:
            ordered.append(bar)
            top = bar.y0
    return ordered


def body_size(lines: list[Line], stop=lambda ln: False) -> float:
    """The size most text is set in, counted up to the first line `stop` accepts (the reference list,
    often set smaller, should not decide it)."""
    weights: Counter = Counter()
    for ln in lines:
        if stop(ln) and weights:
            break
        weights[ln.size] += len(ln.text)
    return weights.most_common(1)[0][0] if weights else 10.0


_PAGE_NUMBER = re.compile(r"^(?:page\s*)?(?:\d{1,4}|[ivxlc]{1,6})(?:\s*(?:of|/)\s*\d{1,4})?$", re.I)


# A journal's running line: a year, and what only a citation of the journal holds: a page range at the
# line's end (not a span of years), a volume with its issue or year, or 'Vol.'/'No.'
# ("Journal of X 12 (2019) 1–10", "1830  J. Smith et al. / Physica A 12 (2019)", "Mach Learn (2019) 108:1–20",
# "IEEE TRANSACTIONS ON X, VOL. 12, NO. 3, MARCH 2019"); a numbered heading or a sentence with a year
# and a number ("4 Results from 1990 to 2010") holds none of these.
_YEAR = YEAR_DIGITS
_JOURNAL_LINE = re.compile(
    rf"^(?=.*\b{_YEAR}\b).*(?:(?<!\d)(?!{_YEAR}\s*[-–—−]\s*{_YEAR}$)\d{{1,5}}\s*[-–—−]\s*\d{{1,5}}$|"
    rf"\b\d{{1,4}}\s*\(\s*\d{{1,4}}(?:\s*[-–—−/]\s*\d{{1,4}})?\s*\)|\b(?i:vol\.?|volume|no\.|issue)\s*\d)")


def drop_running_text(pages: list[list[Line]], heights: list[float], title: str, body: float) -> list[list[Line]]:
    """Drop page numbers and running headers/footers: short text in the top or bottom margin band, or
    the first or last line of a page (margins may be wide), that is a bare number, repeats on other
    pages, is set smaller than the body, repeats the title, or stands apart and reads like a journal's
    running line."""
    tops, bottoms = set(), set()  # the first and last line of each page
    for p in pages:
        if p:
            tops.add(id(min(p, key=lambda ln: ln.y0)))
            bottoms.add(id(max(p, key=lambda ln: ln.y1)))

    def in_band(ln: Line) -> bool:
        h = heights[ln.page]
        return ln.y1 < 0.085 * h or ln.y0 > 0.915 * h or id(ln) in tops or id(ln) in bottoms

    def key(ln: Line) -> str:
        return re.sub(r"\d+", "#", ln.text.lower()).strip()

    def isolated(ln: Line, p: list[Line]) -> bool:
        """No text of the page close above (for a footer) or below (for a header) this line: a header
        stands apart from the text, a reference list running to the top of a page does not."""
        top = id(ln) in tops or (ln.y1 < 0.5 * heights[ln.page] and id(ln) not in bottoms)
        return not any(o is not ln and o.x0 < ln.x1 and ln.x0 < o.x1 and (
            0 <= o.y0 - ln.y1 < 0.9 * ln.size if top else 0 <= ln.y0 - o.y1 < 0.9 * ln.size) for o in p)

    seen = Counter(key(ln) for p in pages for ln in p if in_band(ln))
    title_key = " ".join(title.lower().split())
    out = []
    for p in pages:
        kept = []
        top = min((ln.y0 for ln in p), default=0)
        bottom = max((ln.y1 for ln in p), default=0)
        for ln in p:
            short_text = ln.text.lower().strip(" .")
            if _PAGE_NUMBER.match(ln.text.strip()) and (ln.y0 <= top + 1 or ln.y1 >= bottom - 1):
                continue  # a page number above or below everything else, however wide the margins
            if in_band(ln) and (_PAGE_NUMBER.match(ln.text.strip()) or seen[key(ln)] > 1
                                or (_JOURNAL_LINE.search(ln.text) and not ln.bold and isolated(ln, p))
                                or (ln.size < body - 0.5 and isolated(ln, p))
                                or (title_key and len(short_text) >= 10 and short_text in title_key)):
                continue
            kept.append(ln)
        out.append(kept)
    return out


def drop_footnote_marks(pages: list[list[Line]], heights: list[float], body: float) -> list[list[Line]]:
    """Footnotes start with a raised number in small type low on the page; the same raised number in
    that page's text is the footnote's mark, not a citation, and is dropped."""
    for p in pages:
        notes = {m.group(1) for ln in p if ln.size < body - 0.5 and ln.y0 > 0.5 * heights[ln.page]
                 for m in [SUPERSCRIPT.match(ln.marked.lstrip())] if m}
        if not notes:
            continue
        for ln in p:
            if ln.size >= body - 0.5:
                ln.marked = SUPERSCRIPT.sub(lambda m: "" if m.group(1) in notes else m.group(0), ln.marked)
    return pages
