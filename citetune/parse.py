"""JATS -> citation rows: one row per (citing sentence, cited reference), in the column contract.

Works on what either engine writes, including CERMINE's pretty-printed mixed content ("[\n<xref/>\n]")
and xrefs whose rid lists several references ("ref4 ref5 ref6").
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from lxml import etree

from citetune import jats
from citetune.columns import CITATION_COLUMNS
from citetune.errors import StageError
from citetune.ids import YEAR, find_arxiv, find_doi, find_year
from citetune.io import atomic_dir, write_jsonl
from citetune.text import (
    SAME_AUTHORS,
    clean_text_mapped,
    remove_spans,
    split_label,
    split_sentences,
    tidy_spacing,
    words_of,
)

log = logging.getLogger(__name__)

UNREADABLE = "unreadable JATS"  # the warning of a file that is not XML, or not JATS

_HEADING_NUMBER = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[IVX]+\.|[A-H](?:\.\d+)*\.)\s+(?=\S)")
_NOT_BODY = {"fig", "table-wrap", "fn", "fn-group", "caption", "boxed-text"}
# What may sit between the xrefs of one citation group, and between a group and its brackets.
_BETWEEN = re.compile(r"^[\s\d,;–—−‒-]*(?:\band\b[\s\d,;–—−‒-]*)?$")
_OPEN = re.compile(r"([\[(])[\s\d,;–—−‒-]*$")
_CLOSE = re.compile(r"^[\s\d,;–—−‒-]*([\])])")


@dataclass
class BibEntry:
    """One entry of the reference list, as the JATS marks it up (identifiers and year also from its text)."""

    ref_id: str
    label: str
    raw: str
    authors: str
    title: str
    year: str
    doi: str
    arxiv: str


@dataclass
class Group:
    """One citation group as printed ("[4–6]"), with the references its xrefs point to."""

    start: int
    end: int
    rids: list[str]


def _citation_element(ref: etree._Element) -> etree._Element:
    for tag in ("mixed-citation", "element-citation", "citation", "nlm-citation"):
        found = ref.find(f".//{tag}")
        if found is not None:
            return found
    return ref


def read_references(article: etree._Element) -> dict[str, BibEntry]:
    """ref id -> BibEntry, in list order; fields come from the markup, year and identifiers also from the text."""
    refs: dict[str, BibEntry] = {}
    for n, ref in enumerate(article.iterfind(".//back//ref"), 1):
        ref_id = ref.get("id") or f"ref{n}"
        cit = _citation_element(ref)
        label, raw = split_label(tidy_spacing("".join(cit.itertext())))
        if not label and ref.find("label") is not None:
            label = jats.text_of(ref.find("label"))
        surnames = [jats.text_of(s) for s in cit.iterfind(".//surname")]
        if not surnames:
            surnames = [jats.text_of(s).split()[-1] for s in cit.iterfind(".//string-name") if jats.text_of(s)]
        if not surnames and SAME_AUTHORS.match(raw) and refs:
            surnames = list(refs.values())[-1].authors.split(";")  # '———. 1959.': the authors before
        title = tidy_spacing(jats.text_of(cit.find(".//article-title"))).strip(" .,;:")
        year_el = cit.find(".//year")
        marked = YEAR.search(jats.text_of(year_el)) if year_el is not None else None
        doi_el = cit.find(".//pub-id[@pub-id-type='doi']")
        arxiv_el = cit.find(".//pub-id[@pub-id-type='arxiv']")
        doi = find_doi(jats.text_of(doi_el)) if doi_el is not None else ""
        arxiv = find_arxiv("arXiv:" + jats.text_of(arxiv_el)) if arxiv_el is not None else ""
        refs[ref_id] = BibEntry(
            ref_id=ref_id,
            label=re.sub(r"^[\[(]|[\])]$|\.$", "", label.strip()),
            raw=raw,
            authors=";".join(s for s in surnames if s),
            title=title,
            year=marked.group(1) if marked else find_year(raw),  # printed but not marked up counts too
            doi=doi or find_doi(raw),
            arxiv=arxiv or find_arxiv(raw),
        )
    return refs


def _flatten(el: etree._Element, parts: list[str], xrefs: list[tuple[int, int, str]], pos: list[int]) -> None:
    """Text of `el` in order, recording where each bibliographic xref's text lies."""
    def add(s: str | None) -> None:
        if s:
            parts.append(s)
            pos[0] += len(s)

    add(el.text)
    for child in el:
        if not isinstance(child.tag, str):
            add(child.tail)
            continue
        if child.tag == "xref" and child.get("ref-type", "bibr") == "bibr":
            start = pos[0]
            add("".join(child.itertext()))
            xrefs.append((start, pos[0], child.get("rid", "")))
        elif child.tag not in _NOT_BODY | {"disp-formula"}:
            _flatten(child, parts, xrefs, pos)
        add(child.tail)


def paragraph(p: etree._Element, vocabulary: set[str] | None = None) -> tuple[str, list[tuple[int, int, str]]]:
    """The paragraph's clean text and its xrefs as (start, end, rid) over that text."""
    parts, raw_xrefs, pos = [], [], [0]
    _flatten(p, parts, raw_xrefs, pos)
    text, index = clean_text_mapped("".join(parts), vocabulary)
    xrefs = []
    for start, end, rid in raw_xrefs:
        a, b = bisect_left(index, start), bisect_left(index, end)  # the map only ever moves forward
        if a < b:
            xrefs.append((a, b, rid))
    return text, xrefs


def citation_groups(text: str, xrefs: list[tuple[int, int, str]]) -> list[Group]:
    """Join xrefs printed as one group ("[2, 5]", "[3,7–9]") and widen it to its brackets."""
    groups: list[list[tuple[int, int, str]]] = []
    for x in sorted(xrefs):
        if groups and _BETWEEN.match(text[groups[-1][-1][1]:x[0]]):
            groups[-1].append(x)
        else:
            groups.append([x])
    out = []
    for g in groups:
        start, end = g[0][0], g[-1][1]
        before, after = _OPEN.search(text[:start]), _CLOSE.match(text[end:])
        if before and after and "([".index(before.group(1)) == ")]".index(after.group(1)):
            start, end = before.start(1), end + after.end(1)
        out.append(Group(start, end, [rid for *_, rids in g for rid in rids.split()]))
    return out


def _resolve(rid: str, refs: dict[str, BibEntry], order: list[str]) -> str | None:
    """A rid token -> ref id; CERMINE versions write 'ref3' or a bare index '3'."""
    if rid in refs:
        return rid
    if f"ref{rid}" in refs:
        return f"ref{rid}"
    if rid.isdigit() and 0 < int(rid) <= len(order):
        return order[int(rid) - 1]
    return None


def section_title(el: etree._Element) -> str:
    for sec in el.iterancestors("sec"):
        title = sec.find("title")
        if title is not None:
            return _HEADING_NUMBER.sub("", tidy_spacing(jats.text_of(title))).strip()
    return ""


def citation_rows(article: etree._Element, paper_id: str, min_sentence_chars: int = 0) -> tuple[list[dict], list[str]]:
    """Rows in the column contract, plus warnings about what could not be used."""
    refs = read_references(article)
    order = list(refs)
    warnings = []
    body = article.find("body")
    if body is None or not len(body):
        warnings.append("no body text")
    if not refs:
        warnings.append("no reference list")
    if warnings:
        return [], warnings
    rows, sentence_no, unresolved = [], 0, set()
    paragraphs = [p for p in body.iter("p") if not any(a.tag in _NOT_BODY for a in p.iterancestors())]
    vocabulary = words_of(" ".join("".join(p.itertext()) for p in paragraphs))
    for p in paragraphs:
        text, xrefs = paragraph(p, vocabulary)
        groups = citation_groups(text, xrefs)
        section = section_title(p)
        for start, end in split_sentences(text, [(g.start, g.end) for g in groups]):
            sentence_no += 1
            inside = [g for g in groups if start <= g.start < end]
            sentence = text[start:end]
            if not inside or len(sentence) < min_sentence_chars:
                continue
            context = remove_spans(sentence, [(g.start - start, g.end - start) for g in inside])
            seen = set()
            for g in inside:
                for rid in g.rids:
                    ref_id = _resolve(rid, refs, order)
                    if ref_id is None:
                        unresolved.add(rid)
                        continue
                    if ref_id in seen:
                        continue
                    seen.add(ref_id)
                    ref = refs[ref_id]
                    rows.append({
                        "paper_id": paper_id, "sentence_id": str(sentence_no), "section": section,
                        "sentence": sentence, "context": context, "marker": text[g.start:g.end],
                        "ref_id": ref.ref_id, "ref_label": ref.label, "ref_raw": ref.raw,
                        "ref_authors": ref.authors, "ref_title": ref.title, "ref_year": ref.year,
                        "ref_doi": ref.doi, "ref_arxiv": ref.arxiv,
                    })
    if unresolved:
        warnings.append(f"xrefs to unknown references: {', '.join(sorted(unresolved)[:10])}")
    return rows, warnings


# --- the stage ------------------------------------------------------------------------------------

def rows_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=CITATION_COLUMNS)


def parse_file(path: str | Path, paper_id: str, min_sentence_chars: int = 0) -> tuple[list[dict], list[str]]:
    """Rows and warnings for one JATS file; a file that is not usable JATS gives no rows and says why."""
    try:
        article = jats.parse_jats(Path(path))
    except (OSError, ValueError) as e:
        return [], [f"{UNREADABLE}: {e}"]
    return citation_rows(article, paper_id, min_sentence_chars)


def parse_dir(xml_dir: str | Path, out_dir: str | Path, min_sentence_chars: int = 0) -> list[dict]:
    """data/xml/*.xml -> data/csv/<paper_id>.csv (header only when a paper gives no rows) and
    data/csv/report.jsonl (per paper: rows, sentences, warnings). The output dir is replaced whole,
    unless no file could be read: then StageError lists why, and the outputs of the last run stay."""
    xml_dir, out_dir = Path(xml_dir), Path(out_dir)
    files = sorted(p for p in xml_dir.glob("*.xml") if p.is_file())
    report = []
    with atomic_dir(out_dir) as tmp:
        for path in files:
            paper_id = path.stem
            rows, warnings = parse_file(path, paper_id, min_sentence_chars)
            for w in warnings:
                log.warning("%s: %s", paper_id, w)
            rows_frame(rows).to_csv(tmp / f"{paper_id}.csv", index=False)
            report.append({"paper_id": paper_id, "rows": len(rows),
                           "sentences": len({r["sentence_id"] for r in rows}), "warnings": warnings})
        unreadable = [f"{r['paper_id']}: {r['warnings'][0]}" for r in report
                      if r["warnings"] and r["warnings"][0].startswith(UNREADABLE)]
        if files and len(unreadable) == len(files):
            raise StageError(f"no JATS file in {xml_dir} could be read:" + "".join(f"\n  {u}" for u in unreadable))
        write_jsonl(tmp / "report.jsonl", report)
    return report
