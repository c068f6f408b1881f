"""The bundled sample corpus: paper specs rendered to PDF deterministically with reportlab.

A spec (data/sample/papers/*.yaml) cites works as [@key] or [@k1; @k2]; references are
numbered in order of first citation, printed in the paper's reference style from the
Crossref-format record of each work, and citation groups print as [3], [2, 5] or [4–6].
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

import yaml
from tqdm import tqdm

from citetune.errors import StageError
from citetune.ids import ARXIV_DOI_PREFIX, find_arxiv, paper_id
from citetune.io import write_bytes

if TYPE_CHECKING:  # reportlab is imported where a PDF is rendered: reading specs and formatting references skip it
    from reportlab.lib.styles import ParagraphStyle

CITE_GROUP = re.compile(r"\[(@[^\]]+)\]")
STYLES = ("acm", "physics", "vancouver", "apa")
LAYOUTS = ("one-column", "two-column")

log = logging.getLogger(__name__)


@dataclass
class SampleCorpus:
    papers: list[dict]
    works: dict[str, str]  # citation key -> DOI
    records: dict[str, dict]  # lower-cased DOI -> Crossref-format record

    @classmethod
    def load(cls, root: str | Path = "data/sample") -> "SampleCorpus":
        root = Path(root)
        papers = [yaml.safe_load(p.read_text()) for p in sorted((root / "papers").glob("*.yaml"))]
        works = yaml.safe_load((root / "works.yaml").read_text())
        records = {}
        for line in (root / "crossref.jsonl").read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                records[rec["DOI"].lower()] = rec
        return cls(papers, works, records)

    def record(self, key: str) -> dict:
        try:
            return self.records[self.works[key].lower()]
        except KeyError:
            raise KeyError(f"sample corpus: citation key {key!r} has no work/record") from None


def cite_keys(text: str) -> list[list[str]]:
    """The citation groups of a paragraph, each a list of keys, in order."""
    return [[k.strip().lstrip("@") for k in g.split(";")] for g in CITE_GROUP.findall(text)]


def number_references(paper: dict) -> dict[str, int]:
    """Citation key -> reference number, in order of first citation."""
    numbers: dict[str, int] = {}
    for sec in paper["sections"]:
        for para in sec["paragraphs"]:
            for group in cite_keys(para):
                for key in group:
                    numbers.setdefault(key, len(numbers) + 1)
    return numbers


def format_group(nums: list[int]) -> str:
    """[4, 5, 6] -> '4–6'; [2, 5] -> '2, 5'; runs of three or more become ranges."""
    nums = sorted(set(nums))
    parts, i = [], 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{nums[i]}\u2013{nums[j]}")
        else:
            parts.extend(str(n) for n in nums[i : j + 1])
        i = j + 1
    return ", ".join(parts)


def render_citations(text: str, numbers: dict[str, int]) -> str:
    def repl(m: re.Match) -> str:
        keys = [k.strip().lstrip("@") for k in m.group(1).split(";")]
        return "[" + format_group([numbers[k] for k in keys]) + "]"

    return CITE_GROUP.sub(repl, text)


# --- reference styles ---------------------------------------------------------------------

def _year(rec: dict) -> int:
    return rec["issued"]["date-parts"][0][0]


def _initials(given: str, dots: bool = True) -> str:
    parts = re.split(r"[\s]+", given.replace(".", ". ").strip())
    out = []
    for p in parts:
        if not p:
            continue
        sub = [s for s in p.split("-") if s]
        out.append("-".join(s[0] + ("." if dots else "") for s in sub))
    return (" " if dots else "").join(out)


def _arxiv_id(rec: dict) -> str | None:
    return find_arxiv(rec["DOI"]) if rec["DOI"].lower().startswith(ARXIV_DOI_PREFIX.lower()) else None


def _join(names: list[str], last_sep: str, pair_sep: str) -> str:
    if len(names) <= 2:
        return pair_sep.join(names)
    return ", ".join(names[:-1]) + last_sep + names[-1]


def _container(rec: dict) -> str:
    return (rec.get("container-title") or [""])[0]


def format_reference(rec: dict, style: str) -> str:
    """One reference entry (without its label) in the given style, from a Crossref record."""
    authors = rec.get("author", [])
    title = rec["title"][0]
    year = _year(rec)
    arxiv = _arxiv_id(rec)
    venue, vol, issue, pages = _container(rec), rec.get("volume"), rec.get("issue"), rec.get("page")
    pages_dash = pages.replace("-", "\u2013") if pages else None
    doi = rec["DOI"]
    if style == "acm":
        who = _join([f"{a['given']} {a['family']}" for a in authors], ", and ", " and ")
        if arxiv:
            where = f"arXiv:{arxiv}"
        elif rec.get("type") == "proceedings-article":
            where = f"In {venue}. {pages_dash}"
        else:
            where = f"{venue} {vol}" + (f", {issue}" if issue else "") + f" ({year}), {pages_dash}"
        return f"{who}. {year}. {title}. {where}. https://doi.org/{doi}"
    if style == "physics":
        names = [f"{_initials(a['given'])} {a['family']}" for a in authors]
        if len(names) > 3:
            who = f"{names[0]} et al."
        elif len(names) > 1:
            who = ", ".join(names[:-1]) + " and " + names[-1]
        else:
            who = names[0]
        if arxiv:
            return f"{who}, arXiv:{arxiv} ({year})."
        first_page = (pages or "").split("-")[0]
        if rec.get("type") == "proceedings-article":
            return f"{who}, in {venue}, p. {first_page} ({year})."
        return f"{who}, " + " ".join(x for x in (venue, vol) if x) + (f", {first_page}" if first_page else "") + f" ({year})."
    if style == "vancouver":
        names = [f"{a['family']} {_initials(a['given'], dots=False)}" for a in authors]
        who = ", ".join(names[:6]) + (", et al" if len(names) > 6 else "")
        if arxiv:
            return f"{who}. {title}. arXiv [Preprint]. {year}. arXiv:{arxiv}."
        if rec.get("type") == "proceedings-article":
            return f"{who}. {title}. In: {venue}; {year}. p. {pages}. doi:{doi}"
        return f"{who}. {title}. {venue}. {year};{vol}" + (f"({issue})" if issue else "") + f":{pages}. doi:{doi}"
    if style == "apa":
        who = _join([f"{a['family']}, {_initials(a['given'])}" for a in authors], ", & ", " & ")
        if arxiv:
            return f"{who} ({year}). {title}. arXiv preprint arXiv:{arxiv}. https://doi.org/{doi}"
        where = venue + (f", {vol}" if vol else "") + (f"({issue})" if issue else "") + (f", {pages_dash}" if pages else "")
        return f"{who} ({year}). {title}. {where}. https://doi.org/{doi}"
    raise ValueError(f"unknown reference style {style!r}; use one of {', '.join(STYLES)}")


def reference_label(n: int, style: str) -> str:
    return f"{n}." if style == "vancouver" else f"[{n}]"


# --- PDF rendering ------------------------------------------------------------------------

def _styles(two_column: bool) -> dict[str, ParagraphStyle]:
    from reportlab.lib.enums import TA_JUSTIFY
    from reportlab.lib.styles import ParagraphStyle

    size = 9.5 if two_column else 10.5
    return {
        "title": ParagraphStyle("title", fontName="Helvetica-Bold", fontSize=16, leading=20, spaceAfter=8),
        "authors": ParagraphStyle("authors", fontName="Helvetica", fontSize=11, leading=14, spaceAfter=10),
        "abstract": ParagraphStyle("abstract", fontName="Times-Italic", fontSize=size, leading=size * 1.25,
                                   alignment=TA_JUSTIFY, spaceAfter=10),
        "heading": ParagraphStyle("heading", fontName="Times-Bold", fontSize=size + 2, leading=(size + 2) * 1.3,
                                  spaceBefore=8, spaceAfter=4),
        "body": ParagraphStyle("body", fontName="Times-Roman", fontSize=size, leading=size * 1.25,
                               alignment=TA_JUSTIFY, spaceAfter=5),
        "ref": ParagraphStyle("ref", fontName="Times-Roman", fontSize=size - 1, leading=(size - 1) * 1.25,
                              leftIndent=18, firstLineIndent=-18, spaceAfter=3),
    }


def render_pdf(paper: dict, corpus: SampleCorpus) -> bytes:
    """Typeset one paper; the same spec always gives the same bytes (reportlab invariant mode)."""
    from reportlab.lib.pagesizes import LETTER
    from reportlab.lib.units import inch
    from reportlab.platypus import (
        BaseDocTemplate,
        Frame,
        PageTemplate,
        Paragraph,
        Spacer,
    )

    layout, style = paper.get("layout", "one-column"), paper.get("reference_style", "acm")
    if layout not in LAYOUTS:
        raise ValueError(f"{paper['id']}: layout {layout!r} is not one of {LAYOUTS}")
    two = layout == "two-column"
    st = _styles(two)
    numbers = number_references(paper)
    running_head = paper["title"] if len(paper["title"]) < 70 else paper["title"][:67] + "..."

    def decorate(canvas, doc):
        # Running header and page number: real papers have them, extraction must drop them.
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(inch, LETTER[1] - 0.6 * inch, running_head)
        canvas.drawCentredString(LETTER[0] / 2, 0.5 * inch, str(doc.page))
        canvas.restoreState()

    buf = io.BytesIO()
    doc = BaseDocTemplate(buf, pagesize=LETTER, leftMargin=inch, rightMargin=inch, topMargin=inch,
                          bottomMargin=inch, title=paper["title"], author=", ".join(paper["authors"]),
                          invariant=1, creator="citetune sample corpus")
    width, height = LETTER[0] - 2 * inch, LETTER[1] - 2 * inch
    if two:
        gap = 0.3 * inch
        col = (width - gap) / 2
        frames = [Frame(inch, inch, col, height, id="left"), Frame(inch + col + gap, inch, col, height, id="right")]
    else:
        frames = [Frame(inch, inch, width, height, id="body")]
    doc.addPageTemplates([PageTemplate(id="page", frames=frames, onPage=decorate)])

    story = [Paragraph(escape(paper["title"]), st["title"]),
             Paragraph(escape(", ".join(paper["authors"])), st["authors"]),
             Paragraph("<b>Abstract.</b> " + escape(paper["abstract"].strip()), st["abstract"])]
    for n, sec in enumerate(paper["sections"], 1):
        story.append(Paragraph(f"{n} {escape(sec['heading'])}", st["heading"]))
        for para in sec["paragraphs"]:
            story.append(Paragraph(escape(render_citations(" ".join(para.split()), numbers)), st["body"]))
    story.append(Spacer(1, 6))
    story.append(Paragraph("References", st["heading"]))
    for key, n in numbers.items():
        text = format_reference(corpus.record(key), style)
        story.append(Paragraph(f"{reference_label(n, style)} {escape(text)}", st["ref"]))
    doc.build(story)
    return buf.getvalue()


def manifest_row(paper: dict) -> dict:
    """The manifest fields arXiv would give, for a sample paper."""
    return {
        "id": paper["id"],
        "paper_id": paper["id"],
        "version": 1,
        "title": paper["title"],
        "authors": paper["authors"],
        "abstract": " ".join(paper["abstract"].split()),
        "categories": paper.get("categories", []),
        "primary_category": (paper.get("categories") or [None])[0],
        "published": str(paper.get("published", "")),
        "updated": str(paper.get("published", "")),
        "doi": None,
        "journal_ref": None,
        "comment": f"citetune sample corpus, {paper.get('layout')}, {paper.get('reference_style')} references",
        "pdf_url": None,
        "source": "sample",
    }


def render_sample(sample_dir: Path, pdf_dir: Path, limit: int = 0) -> tuple[list[dict], list[dict]]:
    """Render the first `limit` sample papers (0 = all); same specs, same bytes."""
    try:
        corpus = SampleCorpus.load(sample_dir)
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise StageError(f"cannot load the sample corpus from {sample_dir}: {e}; pass --sample-dir DIR") from e
    papers = corpus.papers[:limit] if limit > 0 else corpus.papers
    if not papers:
        raise StageError(f"no sample papers in {sample_dir}/papers/*.yaml; pass --sample-dir DIR")
    rows, failures = [], []
    ids: dict[str, str] = {}  # paper_id -> the id of the paper that has it
    for paper in tqdm(papers, desc="sample PDFs", unit="paper"):
        try:
            pdf = render_pdf(paper, corpus)
            row = manifest_row(paper)
            row["paper_id"] = paper_id(row["id"])
        except (KeyError, ValueError, TypeError) as e:
            log.warning("%s: cannot render: %s", paper.get("id"), e)
            failures.append({"id": paper.get("id"), "paper_id": None, "url": None, "reason": f"cannot render: {e}"})
            continue
        if row["paper_id"] in ids:  # one PDF file per paper_id: the second would replace the first
            why = f"same paper_id {row['paper_id']!r} as sample paper {ids[row['paper_id']]!r}; left out"
            log.warning("%s: %s", row["id"], why)
            failures.append({"id": row["id"], "paper_id": row["paper_id"], "url": None, "reason": why})
            continue
        ids[row["paper_id"]] = row["id"]
        write_bytes(pdf_dir / f"{row['paper_id']}.pdf", pdf)
        row.update(sha256=hashlib.sha256(pdf).hexdigest(), bytes=len(pdf))
        rows.append(row)
    return rows, failures
