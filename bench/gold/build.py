"""Compile the gold sources and write the gold annotation.

For every bench/gold/src/<paper_id>/main.tex: pdflatex, bibtex, pdflatex, pdflatex in a temp dir (fails
loudly on a LaTeX or BibTeX error), then writes bench/gold/pdf/<paper_id>.pdf and bench/gold/<paper_id>.json.
The printed reference entries come from the .bbl (printed order) rendered to text with pylatexenc; the citing
sentences and their cited keys come from cites.json written by make_sources.py.

    python bench/gold/build.py [paper_id ...]      # needs TeX Live and `pip install pylatexenc`
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec
from pylatexenc.macrospec import MacroSpec

HERE = Path(__file__).resolve().parent
SRC, PDF = HERE / "src", HERE / "pdf"


def run(cmd: list[str], cwd: Path) -> None:
    env = dict(os.environ, SOURCE_DATE_EPOCH="1767225600", FORCE_SOURCE_DATE="1")  # reproducible PDFs
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    if p.returncode != 0 or (cmd[0] == "bibtex" and "error message" in p.stdout):
        sys.exit(f"{' '.join(cmd)} failed in {cwd}:\n{p.stdout[-4000:]}")


def compile_paper(src: Path, work: Path) -> None:
    for f in src.iterdir():
        shutil.copy(f, work / f.name)
    flags = ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex"]
    run(flags, work)
    run(["bibtex", "main"], work)
    run(flags, work)
    run(flags, work)
    log = (work / "main.log").read_text(errors="replace")
    if "Citation" in log and "undefined" in log and re.search(r"Citation `[^']+' .*undefined", log):
        sys.exit(f"undefined citations in {src}")


# ---------------------------------------------------------------------------------------------- bbl -> text

def _db():
    """Parser and text contexts that know the macros bibtex styles put in a .bbl."""
    from pylatexenc import latex2text, latexwalker

    specs = {  # macro -> (argument spec, text replacement)
        "bibinfo": ("{{", "%(2)s"), "bibfield": ("{{", "%(2)s"), "href": ("{{", "%(2)s"), "Eprint": ("{{", "%(2)s"),
        "showeprint": ("[{", "arXiv:%(2)s"), "BibitemShut": ("{", ""), "bibAnnoteFile": ("{", ""),
        "bibAnnote": ("{{", ""), "BibitemOpen": ("", ""), "newblock": ("", " "), "urlprefix": ("", "URL "),
        "doiprefix": ("", "DOI: "), "EOS": ("", ""), "selectlanguage": ("{", ""), "natexlab": ("{", "%(1)s"), "enquote": ("{", "\u201c%(1)s\u201d"),
        "DOIprefix": ("", "doi:"), "URLprefix": ("", "URL: "), "ArXivprefix": ("", "arXiv:"), "newline": ("", " "),
        "bysame": ("", "\u2014\u2014\u2014"), "BIBentrySTDinterwordspacing": ("", ""),
        "BIBentryALTinterwordspacing": ("", ""), "BIBforeignlanguage": ("{{", "%(2)s"), "shownote": ("{", "%(1)s"),
    }
    for m in ("bibnamefont", "citenamefont", "showarticletitle", "showDOI", "showURL", "path", "doi", "url",
              "bibsc", "bibfnamefont", "mbox", "ensuremath", "BibUrl", "textsc", "textsl", "textup", "textnormal"):
        specs[m] = ("{", "%(1)s")
    db = latexwalker.get_default_latex_context_db()
    db.add_context_category("gold-bbl", prepend=True, environments=[], specials=[],
                            macros=[MacroSpec(m, a) for m, (a, _) in specs.items()])
    tdb = latex2text.get_default_latex_context_db()
    tdb.add_context_category("gold-bbl", prepend=True, environments=[], specials=[],
                             macros=[MacroTextSpec(m, simplify_repl=r) for m, (_, r) in specs.items()])
    return db, tdb


def _group(s: str, i: int, open_c: str, close_c: str) -> int:
    """Index just past the group opening at s[i] (brace-aware)."""
    depth = 0
    j = i
    while j < len(s):
        c = s[j]
        if c == "\\":
            j += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if depth == 0 and c == close_c and (open_c != "{" or j > i):
            return j + 1
        if open_c == "[" and c == "]" and depth == 0:
            return j + 1
        j += 1
    raise ValueError("unbalanced group")


def _skip(s: str, i: int) -> int:
    """Skip white space and %-comments."""
    while i < len(s) and (s[i].isspace() or s[i] == "%"):
        if s[i] == "%":
            i = s.index("\n", i)
        i += 1
    return i


def bbl_items(bbl: str) -> list[tuple[str, str, str]]:
    """(key, optional label, latex body) of every \\bibitem in printed order."""
    if "\\begin{thebibliography}" not in bbl and "\\begin{mcitethebibliography}" in bbl:  # achemso, rsc
        bbl = bbl.replace("{mcitethebibliography}", "{thebibliography}")
    body = bbl.split("\\begin{thebibliography}", 1)[1]
    body = body.rsplit("\\end{thebibliography}", 1)[0]
    starts = [m.start() for m in re.finditer(r"\\bibitem\b", body)]
    out = []
    for n, st in enumerate(starts):
        seg = body[st: starts[n + 1] if n + 1 < len(starts) else len(body)]
        i = len("\\bibitem")
        label = ""
        i = _skip(seg, i)
        if seg[i] == "[":
            j = _group(seg, i, "[", "]")
            label = seg[i + 1: j - 1]
            i = _skip(seg, j)
        j = _group(seg, i, "{", "}")
        key = seg[i + 1: j - 1].strip()
        out.append((key, label, seg[j:]))
    return out


AUTHOR_YEAR = True  # whether the paper cites author-year, set per paper
DOI_PREFIX = ""  # how the .bbl's own \\doi macro prints, set per paper


def doi_prefix(bbl: str) -> str:
    m = re.search(r"\\providecommand\{\\doi\}(.{0,80})", bbl, re.S)
    if not m:
        return ""
    body = re.sub(r"\\href\s*\{[^}]*\}", "", m.group(1))
    if "doi:" in body:
        return "doi: "
    if "doi.org/" in body:
        return "https://doi.org/"
    return ""


def _mcite(s: str) -> str:
    """The mciteplus tail of an achemso/rsc entry: \\EndOfBibitem prints '.' after ...WouldAddEndPuncttrue."""
    s = re.sub(r"\\relax\s*\\mciteBstWouldAddEndPunct(true|false)\s*\\mciteSetBstMidEndSepPunct\s*(\{[^{}]*\}\s*)+"
               r"\\relax\s*\\EndOfBibitem", lambda m: "." if m.group(1) == "true" else "", s)
    return re.sub(r"\\latin\s*\{([^{}]*)\}", r"\1", s)


def latex_to_text(s: str) -> str:
    if "\\EndOfBibitem" in s or "\\latin" in s:  # only in mciteplus .bbl files (achemso, rsc)
        s = _mcite(s)
    s = re.sub(r"\\urldef\\tempurl%?\s*\\url\{([^}]*)\}\s*\\show(?:DOI|URL)\{\\tempurl\}", r" \1", s)
    if not AUTHOR_YEAR:  # natbib prints \natexlab{a} only in author-year mode
        s = re.sub(r"\\natexlab\{[a-z]*\}", "", s)
    s = s.replace("\\href@noop {}", "").replace("\\href@noop{}", "")
    s = re.sub(r"(?<!\\)%\n\s*", "", s)  # comment line-joins
    s = re.sub(r"(?m)(?<!\\)%.*$", "", s)
    s = re.sub(r"\\(?:url|path)\s*\{([^}]*)\}(\{[^}]*\})?", lambda m: "{}" + (m.group(2)[1:-1] if m.group(2) else m.group(1)), s)
    s = re.sub(r"\\doi\{([^}]*)\}", lambda m: DOI_PREFIX + m.group(1), s)
    s = re.sub(r"\\penalty\s*-?\d+\s*", "", s)
    s = re.sub(r"\\(?:hskip|kern|vskip)\s*-?[\d.]+\s*(?:[a-z]{2})?(?:\s*plus\s*[\d.]+[a-z]{2})?"
               r"(?:\s*minus\s*[\d.]+[a-z]{2})?", " ", s)
    text = _CONV.latex_to_text(s)
    text = unicodedata.normalize("NFC", text).replace("\u00a0", " ")
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.;:])", r"\1", text)
    return text


class _Conv:
    """pylatexenc parser + text renderer with the .bbl macros known."""

    def __init__(self):
        from pylatexenc.latexwalker import LatexWalker
        self.db, tdb = _db()
        self.walker_cls = LatexWalker
        self.l2t = LatexNodes2Text(latex_context=tdb, math_mode="text", strict_latex_spaces=True)

    def latex_to_text(self, s: str) -> str:
        w = self.walker_cls(s, latex_context=self.db, tolerant_parsing=True)
        nodes, _, _ = w.get_latex_nodes()
        return self.l2t.nodelist_to_text(nodes)


_CONV: _Conv | None = None


def _init() -> None:
    global _CONV
    _CONV = _Conv()


# ---------------------------------------------------------------------------------------------- gold

def letters(s: str) -> str:
    """Accent-folded lower-case letters and digits only (for the cross-check against the PDF text)."""
    s = "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]", "", s.lower())


def cross_check(gold: dict, pdf_text: str) -> list[str]:
    """Entries whose text is not found in the PDF text (letters only). A few are expected: an entry broken by a
    page break (page number, footnote in between) or an OT1 accent on a dotless i that the PDF text loses."""
    text = letters(pdf_text)
    return [r["raw"] for r in gold["references"] if letters(r["raw"]) not in text]


def printed_title(title_tex: str, raw: str) -> str | None:
    want = latex_to_text(title_tex.replace("{", "").replace("}", "")) if "\\" not in title_tex else latex_to_text(title_tex)
    i = raw.lower().find(want.lower())
    if i < 0:
        return None
    return raw[i: i + len(want)]


def short_names(label: str) -> str:
    """Narrative author text from a natbib-style bibitem label: 'Smith et~al.(2019a)Smith, ...' -> 'Smith et al.'"""
    label = re.sub(r"\{\\natexlab\{[a-z]\}\}", "", label)
    if "(" in label:
        names = label.split("(", 1)[0]
    else:  # apalike: 'Smith et~al., 2019'
        names = label.rsplit(",", 1)[0]
    return latex_to_text(names)


def paper_gold(pid: str, work: Path, meta: dict, bib: dict[str, dict], pages: int) -> dict:
    global DOI_PREFIX, AUTHOR_YEAR
    AUTHOR_YEAR = meta["citation_style"] == "author-year"
    bbl = (work / "main.bbl").read_text(errors="replace")
    DOI_PREFIX = doi_prefix(bbl)
    items = bbl_items(bbl)
    index = {key: n for n, (key, _, _) in enumerate(items)}
    refs = []
    for key, label, tex in items:
        raw = latex_to_text(tex)
        e = bib[key]
        first = e["author"].split(" and ")[0]
        surname = first.split(",")[0] if "," in first else first
        surname = latex_to_text(surname.strip())
        doi = e.get("doi")
        title = printed_title(e["title"], raw)
        refs.append({"raw": raw, "first_author": surname, "year": e["year"][:4],
                     "title": title, "doi": doi.lower() if doi and doi.lower() in raw.lower() else None})
    sentences = []
    labels = {key: label for key, label, _ in items}
    for s in meta["sentences"]:
        text = re.sub(r"<<NAMES:([^>]+)>>", lambda m: "\\mbox{" + short_names(labels[m.group(1)]) + "}", s["latex"])
        text = latex_to_text(text.replace("~", " "))
        text = text.replace("..", ".")
        sentences.append({"text": text, "refs": sorted({index[k] for k in s["keys"]})})
    return {"paper_id": pid, "class": meta["cls"], "columns": meta["columns"],
            "citation_style": meta["citation_style"], "reference_style": meta["reference_style"], "pages": pages,
            "references": refs, "sentences": sentences}


def read_bib(path: Path) -> dict[str, dict]:
    out = {}
    for m in re.finditer(r"@\w+\{([^,]+),\n(.*?)\n\}", path.read_text(), re.S):
        fields = dict(re.findall(r"^\s*(\w+) = \{(.*)\},?$", m.group(2), re.M))
        out[m.group(1)] = fields
    return out


def main() -> None:
    import pymupdf

    _init()
    PDF.mkdir(exist_ok=True)
    wanted = sys.argv[1:]
    for src in sorted(p for p in SRC.iterdir() if p.is_dir()):
        pid = src.name
        if wanted and pid not in wanted:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            compile_paper(src, work)
            shutil.copy(work / "main.pdf", PDF / f"{pid}.pdf")
            doc = pymupdf.open(work / "main.pdf")
            pages = doc.page_count
            pdf_text = " ".join(p.get_text() for p in doc)
            meta = json.loads((src / "cites.json").read_text())
            gold = paper_gold(pid, work, meta, read_bib(src / "refs.bib"), pages)
            unseen = cross_check(gold, pdf_text)
            shutil.copy(work / "main.bbl", src / "main.bbl")
        (HERE / f"{pid}.json").write_text(json.dumps(gold, indent=1, ensure_ascii=False) + "\n")
        print(f"{pid}: {pages} pages, {len(gold['references'])} refs, {len(gold['sentences'])} citing sentences; "
              f"{len(unseen)} entries not verbatim in the PDF text (page breaks, dotless-i accents)",
              flush=True)


if __name__ == "__main__":
    main()
