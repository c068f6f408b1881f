"""extract: the built-in engine against the sample corpus specs, the per-PDF cache, bad PDFs, and the
CERMINE orchestration with a stand-in program (citetune/testing/cermine_standin.py) in place of java + the jar."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymupdf
import pytest
import yaml
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import Paragraph, SimpleDocTemplate

from citetune import jats
from citetune.engines import builtin, zones
from citetune.engines.builtin import join_lines
from citetune.engines.layout import SUP_CLOSE, SUP_OPEN, Line
from citetune.errors import StageError
from citetune.extract import (
    Job,
    choose_engine,
    extract_papers,
    folder_manifest,
    run_isolated,
)
from citetune.io import read_jsonl
from citetune.params import default_params
from citetune.parse import citation_rows, read_references
from citetune.pdf_check import pdf_problem
from citetune.sample import (
    CITE_GROUP,
    SampleCorpus,
    format_reference,
    number_references,
    reference_label,
    render_citations,
    render_pdf,
)
from citetune.testing import cermine_standin
from citetune.testing.pdf_papers import SmallPaper

ROOT = Path(__file__).resolve().parents[1]
# The stand-in runs as a program; PYTHONPATH makes it import this checkout's citetune.
CHECKOUT_FIRST = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


@pytest.fixture(scope="module")
def corpus():
    return SampleCorpus.load(ROOT / "data/sample")


@pytest.fixture(scope="module")
def pdf_dir(tmp_path_factory, corpus):
    d = tmp_path_factory.mktemp("pdf")
    for paper in corpus.papers:
        (d / f"{paper['id']}.pdf").write_bytes(render_pdf(paper, corpus))
    return d


def manifest(ids):
    return [{"paper_id": i} for i in ids]


@pytest.fixture(scope="module")
def extracted(tmp_path_factory, corpus, pdf_dir):
    """Every sample paper through the built-in engine, as the stage runs it."""
    work = tmp_path_factory.mktemp("extract")
    report = extract_papers(manifest(p["id"] for p in corpus.papers), pdf_dir, work / "xml", work / "cache",
                            default_params("extract", engine="builtin", timeout_seconds=120))
    return work / "xml", {r["paper_id"]: r for r in report}


def article(xml_dir, paper_id):
    return jats.parse_jats(xml_dir / f"{paper_id}.xml")


def spec_sentences(paper):
    """(sentence as printed, its citation keys) for every citing sentence of a spec."""
    numbers = number_references(paper)
    out = []
    for sec in paper["sections"]:
        for para in sec["paragraphs"]:
            for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", " ".join(para.split())):
                keys = [k.strip().lstrip("@") for g in CITE_GROUP.findall(sentence) for k in g.split(";")]
                if keys:
                    out.append((render_citations(sentence, numbers), keys))
    return out


# --- the built-in engine on the sample corpus -------------------------------------------------------

def test_every_sample_paper_is_extracted_with_its_front_matter_and_sections(corpus, extracted):
    xml_dir, report = extracted
    assert sorted(report) == sorted(p["id"] for p in corpus.papers)
    for paper in corpus.papers:
        row = report[paper["id"]]
        assert (row["engine"], row["status"], row["error"]) == ("builtin", "ok", ""), row
        art = article(xml_dir, paper["id"])
        assert jats.text_of(art.find(".//article-meta//article-title")) == paper["title"]
        assert [jats.text_of(s) for s in art.iterfind(".//contrib/string-name")] == paper["authors"]
        assert jats.text_of(art.find(".//abstract")) == " ".join(paper["abstract"].split())
        assert [jats.text_of(t) for t in art.iterfind("body/sec/title")] == [s["heading"] for s in paper["sections"]]
        assert row["n_refs"] == len(number_references(paper)), paper["id"]  # one entry per cited work


def test_reference_entries_keep_the_printed_text_and_mark_up_every_printed_field(corpus, extracted):
    xml_dir, _ = extracted
    for paper in corpus.papers:
        style = paper.get("reference_style", "acm")
        art = article(xml_dir, paper["id"])
        refs = read_references(art)
        for key, n in number_references(paper).items():
            rec, printed = corpus.record(key), format_reference(corpus.record(key), style)
            el = art.find(f".//ref[@id='ref{n}']/mixed-citation")
            assert "".join(el.itertext()) == f"{reference_label(n, style)} {printed}"  # the raw text, whole
            ref = refs[f"ref{n}"]
            where = f"{paper['id']} [{n}] {printed}"
            assert ref.authors.split(";")[0] == rec["author"][0]["family"], where
            assert ref.year == str(rec["issued"]["date-parts"][0][0]), where
            if rec["title"][0] in printed:
                assert ref.title == rec["title"][0], where
            else:
                assert ref.title == "", where  # physics prints no titles: none is guessed
            assert ref.doi == (rec["DOI"] if rec["DOI"] in printed else ""), where
            arxiv = re.match(r"10\.48550/arxiv\.(.+)", rec["DOI"], re.I)
            if arxiv and "arXiv:" in printed:
                assert ref.arxiv == arxiv.group(1), where
            if rec.get("volume") and f" {rec['volume']}" in printed and style != "acm" or \
                    style == "acm" and rec.get("volume") and not arxiv:
                assert el.findtext("volume") == rec["volume"], where
            if not arxiv and rec.get("page") and style in ("acm", "apa", "vancouver"):
                first, _, last = rec["page"].partition("-")
                assert (el.findtext("fpage"), el.findtext("lpage") or "") == (first, last), where


def test_citing_sentences_are_linked_to_exactly_the_spec_references(corpus, extracted):
    xml_dir, _ = extracted
    for paper in corpus.papers:
        numbers = number_references(paper)
        rows, warnings = citation_rows(article(xml_dir, paper["id"]), paper["id"])
        assert warnings == []
        linked = {}
        for r in rows:
            linked.setdefault(r["sentence"], set()).add(r["ref_id"])
            assert "[" not in r["context"] and "  " not in r["context"] and " ." not in r["context"]
            assert r["marker"] in r["sentence"] and re.fullmatch(r"\[[\d,–\s]+\]", r["marker"])
        expected = spec_sentences(paper)
        assert len(linked) == len(expected), paper["id"]
        for sentence, keys in expected:
            assert linked.get(sentence) == {f"ref{numbers[k]}" for k in keys}, (paper["id"], sentence)


def test_citation_groups_are_xrefs_in_cermines_form(extracted):
    xml_dir, _ = extracted
    seen = set()
    for path in sorted(xml_dir.glob("*.xml")):
        art = jats.parse_jats(path)
        ids = {r.get("id") for r in art.iterfind(".//ref")}
        for x in art.iterfind(".//body//xref"):
            assert x.get("ref-type") == "bibr" and set(x.get("rid").split()) <= ids
            assert re.fullmatch(r"\d+(–\d+)?", x.text)  # brackets and separators stay outside
            if "–" in x.text:
                a, b = map(int, x.text.split("–"))
                assert x.get("rid").split() == [f"ref{n}" for n in range(a, b + 1)]
                seen.add("range")
            if (x.tail or "").startswith(", "):
                seen.add("list")
    assert seen == {"range", "list"}


def test_unchanged_pdfs_come_from_the_cache_and_new_ones_are_extracted(corpus, pdf_dir, tmp_path):
    ids = [p["id"] for p in corpus.papers[:3]]
    params = default_params("extract", engine="builtin")
    first = extract_papers(manifest(ids[:2]), pdf_dir, tmp_path / "xml", tmp_path / "cache", params)
    assert [r["status"] for r in first] == ["ok", "ok"]
    (tmp_path / "xml" / "stray.xml").write_text("<article/>")
    again = extract_papers(manifest(ids), pdf_dir, tmp_path / "xml", tmp_path / "cache", params)
    assert [r["status"] for r in again] == ["cached", "cached", "ok"]
    assert [r["n_refs"] for r in again[:2]] == [r["n_refs"] for r in first]
    assert sorted(p.name for p in (tmp_path / "xml").iterdir()) == sorted([f"{i}.xml" for i in ids] + ["report.jsonl"])
    assert read_jsonl(tmp_path / "cache/last_run.jsonl") == again
    assert [r["status"] for r in read_jsonl(tmp_path / "xml/report.jsonl")] == ["ok", "ok", "ok"]
    # A changed PDF under the same id is extracted again.
    changed = tmp_path / "pdf"
    changed.mkdir()
    for i in ids:
        (changed / f"{i}.pdf").write_bytes((pdf_dir / f"{i}.pdf").read_bytes())
    (changed / f"{ids[0]}.pdf").write_bytes((pdf_dir / f"{ids[2]}.pdf").read_bytes())
    third = extract_papers(manifest(ids), changed, tmp_path / "xml", tmp_path / "cache", params)
    assert [r["status"] for r in third] == ["cached", "cached", "cached"]  # same bytes as ids[2]: cached
    (changed / f"{ids[1]}.pdf").write_bytes((pdf_dir / f"{ids[1]}.pdf").read_bytes() + b"\n% edited\n")
    assert [r["status"] for r in extract_papers(manifest(ids), changed, tmp_path / "xml", tmp_path / "cache",
                                                params)] == ["cached", "ok", "cached"]


KILLED_RUN = """
import functools, os, signal, sys
from citetune import extract
from citetune.params import default_params


def work(pdf):
    if pdf.stem == os.environ["KILL_AT"]:
        os.killpg(0, signal.SIGKILL)  # kill -9 of the stage, its fork server and its workers
    return extract._builtin_work(pdf)


def main(ids, pdf_dir, out_dir, cache_dir):
    extract.run_isolated = functools.partial(extract.run_isolated, work=work)
    extract.extract_papers([{"paper_id": i} for i in ids], pdf_dir, out_dir, cache_dir,
                           default_params("extract", engine="builtin", workers=1))
"""


def test_a_run_killed_midway_leaves_each_pdf_it_finished_in_the_cache(corpus, pdf_dir, tmp_path):
    ids = [p["id"] for p in corpus.papers[:6]]
    (tmp_path / "killed_run.py").write_text(KILLED_RUN)
    env = dict(os.environ, KILL_AT=ids[3], PYTHONPATH=os.pathsep.join([str(tmp_path), CHECKOUT_FIRST["PYTHONPATH"]]))
    code = f"import killed_run; killed_run.main({ids!r}, {str(pdf_dir)!r}, {str(tmp_path / 'xml')!r}, " \
           f"{str(tmp_path / 'cache')!r})"
    run = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, start_new_session=True,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert not (tmp_path / "xml").exists()
    rows = extract_papers(manifest(ids), pdf_dir, tmp_path / "xml", tmp_path / "cache",
                          default_params("extract", engine="builtin", workers=1))
    assert [r["status"] for r in rows] == ["cached"] * 3 + ["ok"] * 3  # only the three not done are extracted


def test_the_output_folder_is_the_same_byte_for_byte_on_every_run(extracted, corpus, pdf_dir, tmp_path):
    first, _ = extracted
    params = default_params("extract", engine="builtin", timeout_seconds=120)
    ids = [p["id"] for p in corpus.papers]
    from_cache = extract_papers(manifest(ids), pdf_dir, tmp_path / "again", first.parent / "cache", params)
    assert {r["status"] for r in from_cache} == {"cached"}
    extract_papers(manifest(ids), pdf_dir, tmp_path / "fresh", tmp_path / "cache", params)

    def files(d):
        return {p.name: p.read_bytes() for p in sorted(d.iterdir())}

    assert files(tmp_path / "again") == files(first) == files(tmp_path / "fresh")
    assert "seconds" not in (first / "report.jsonl").read_text()
    assert all("seconds" in r for r in read_jsonl(tmp_path / "cache/last_run.jsonl"))  # the run's own report


def test_a_pdf_padded_with_nuls_or_whitespace_after_its_trailer_is_whole(extracted, corpus, pdf_dir, tmp_path):
    paper = corpus.papers[0]["id"]
    whole = (pdf_dir / f"{paper}.pdf").read_bytes()
    (tmp_path / "nuls.pdf").write_bytes(whole + b"\0" * 10_000)  # past any fixed window, as block copies pad
    (tmp_path / "spaces.pdf").write_bytes(whole + b"\r\n \t\0\n" * 1000)
    (tmp_path / "cut.pdf").write_bytes(whole[: len(whole) // 2] + b"\0" * 10_000)
    (tmp_path / "nothing.pdf").write_bytes(b"\0" * 10_000)
    assert pdf_problem(tmp_path / "nuls.pdf") is None and pdf_problem(tmp_path / "spaces.pdf") is None
    assert pdf_problem(tmp_path / "cut.pdf") == "truncated PDF (no %%EOF trailer)"
    assert pdf_problem(tmp_path / "nothing.pdf").startswith("not a PDF")
    rows = extract_papers(manifest(["nuls", "spaces"]), tmp_path, tmp_path / "xml", tmp_path / "cache",
                          default_params("extract", engine="builtin"))
    assert [(r["status"], r["n_refs"]) for r in rows] == [("ok", extracted[1][paper]["n_refs"])] * 2


def test_links_and_other_non_regular_files_are_reported_and_never_read(corpus, pdf_dir, tmp_path):
    paper = corpus.papers[0]["id"]
    folder = tmp_path / "pdf"
    folder.mkdir()
    (folder / f"{paper}.pdf").write_bytes((pdf_dir / f"{paper}.pdf").read_bytes())
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-TOKEN-0123456789 " * 4)
    (folder / "secret.pdf").symlink_to(secret)
    (folder / "alias.pdf").symlink_to(pdf_dir / f"{paper}.pdf")  # a link to a good PDF is not followed either
    (folder / "folder.pdf").mkdir()
    os.mkfifo(folder / "fifo.pdf")  # reading it would block forever
    rows = folder_manifest(folder)
    assert sorted(r["paper_id"] for r in rows) == sorted(["alias", "fifo", "folder", paper, "secret"])
    report = extract_papers(rows, folder, tmp_path / "xml", tmp_path / "cache", default_params("extract"))
    by_id = {r["paper_id"]: r for r in report}
    assert by_id[paper]["status"] == "ok"
    for name in ("secret", "alias"):
        assert by_id[name]["status"] == "failed" and "symbolic link" in by_id[name]["error"]
    for name in ("fifo", "folder"):
        assert by_id[name]["status"] == "failed" and "not a regular file" in by_id[name]["error"]
    for written in (tmp_path / "xml/report.jsonl", tmp_path / "cache/last_run.jsonl"):
        assert "SECRET" not in written.read_text()
    assert "symbolic link" in pdf_problem(folder / "secret.pdf")  # the download stage's check too


def test_a_paper_id_listed_twice_is_reported_with_both_rows(corpus, pdf_dir, tmp_path):
    a, b = (p["id"] for p in corpus.papers[:2])
    rows = extract_papers([{"paper_id": a}, {"paper_id": b}, {"paper_id": a, "pdf": str(pdf_dir / f"{b}.pdf")}],
                          pdf_dir, tmp_path / "xml", tmp_path / "cache", default_params("extract"))
    assert [(r["paper_id"], r["status"]) for r in rows] == [(a, "ok"), (b, "ok"), (a, "failed")]
    assert rows[2]["error"] == "manifest rows 1 and 3 have the same paper_id; row 3 is left out"
    assert (tmp_path / "xml" / f"{a}.xml").read_bytes() != (tmp_path / "xml" / f"{b}.xml").read_bytes()
    with pytest.raises(ValueError, match="its own paper_id"):
        run_isolated([Job(a, pdf_dir / f"{a}.pdf"), Job(a, pdf_dir / f"{b}.pdf")], timeout=30)


def test_line_breaks_are_joined_as_the_words_and_links_were_printed():
    lines = ["Attention replaced recurrence in trans-", "formers and self-", "attention; multi-", "head layers,",
             "pre-", "diction, see https://doi.org/10.1145/3292500.", "3330701 and doi:10.1016/", "S0140-6736(99)."]
    assert join_lines(lines, vocabulary={"prediction"}) == (
        "Attention replaced recurrence in transformers and self-attention; multi-head layers, prediction, "
        "see https://doi.org/10.1145/3292500.3330701 and doi:10.1016/S0140-6736(99).")


def test_each_line_falls_into_its_zone():
    tops = iter(range(60, 2000, 14))

    def line(text, size=10.0, bold=False, marked=""):
        top = next(tops)
        return Line(0, 72, top, 500, top + size, text, size, bold, marked=marked)

    lines = [line("Abstract. We read papers by zones."), line("Each zone has its reader."),
             line("1 Introduction", bold=True), line("The body comes first."),
             line("Figure 1: a caption in smaller type.", size=8), line("It goes on after the figure."),
             line("References", bold=True), line("[1] A. Smith. A title. Venue, 2019."),
             line("[2] B. Jones. Another title. Venue, 2020."),
             line("1 Supported by a grant.", size=8, marked=f"{SUP_OPEN}1{SUP_CLOSE} Supported by a grant."),
             line("Appendix", bold=True), line("A proof after the references.")]
    found = zones.classify(lines, body=10.0, start=0)

    def texts(ls):
        return [ln.text for ln in ls]

    assert texts(found.front) == ["Abstract. We read papers by zones.", "Each zone has its reader."]
    assert [(s.heading, texts(s.lines)) for s in found.body] == [
        ("Introduction", ["The body comes first.", "It goes on after the figure."])]
    assert texts(found.floats) == ["Figure 1: a caption in smaller type."]
    assert texts(found.references) == ["[1] A. Smith. A title. Venue, 2019.",
                                       "[2] B. Jones. Another title. Venue, 2020."]
    assert texts(found.footnotes) == ["1 Supported by a grant."]
    assert [(s.heading, texts(s.lines)) for s in found.back] == [("Appendix", ["A proof after the references."])]


def test_a_killed_run_leaves_no_half_written_output_behind(corpus, pdf_dir, tmp_path):
    paper = corpus.papers[0]["id"]
    (tmp_path / ".xml.tmp-99999").mkdir()  # as a run killed while writing would leave it
    (tmp_path / ".xml.tmp-99999" / f"{paper}.xml").write_text("<arti")
    extract_papers(manifest([paper]), pdf_dir, tmp_path / "xml", tmp_path / "cache", default_params("extract", engine="builtin"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "xml"]


def bad_pdfs(d: Path, good: Path) -> dict[str, str]:
    """name -> the reason the report must give."""
    (d / "empty.pdf").write_bytes(b"")
    whole = good.read_bytes()
    (d / "cut.pdf").write_bytes(whole[: len(whole) // 2])
    (d / "html.pdf").write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>")
    doc = pymupdf.open()
    doc.new_page().draw_rect(pymupdf.Rect(50, 50, 200, 200))
    (d / "notext.pdf").write_bytes(doc.tobytes())
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "secret")
    (d / "locked.pdf").write_bytes(doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="o", user_pw="u"))
    return {"empty": "empty file", "html": "not a PDF", "notext": "no extractable text", "locked": "encrypted",
            "cut": "truncated", "missing": "PDF not found"}


def test_bad_pdfs_are_reported_with_their_reason_and_the_stage_goes_on(corpus, pdf_dir, tmp_path):
    good = corpus.papers[0]["id"]
    (tmp_path / "pdf").mkdir()
    (tmp_path / "pdf" / f"{good}.pdf").write_bytes((pdf_dir / f"{good}.pdf").read_bytes())
    reasons = bad_pdfs(tmp_path / "pdf", pdf_dir / f"{good}.pdf")
    rows = extract_papers(manifest([good, *reasons, ""]), tmp_path / "pdf", tmp_path / "xml", tmp_path / "cache",
                          default_params("extract", engine="builtin"))
    by_id = {r["paper_id"]: r for r in rows}
    assert by_id[good]["status"] == "ok"
    for name, why in reasons.items():
        assert by_id[name]["status"] == "failed" and why in by_id[name]["error"], by_id[name]
    assert by_id["<row 8>"]["error"] == "manifest row has no usable paper_id"
    assert sorted(p.name for p in (tmp_path / "xml").iterdir()) == sorted([f"{good}.xml", "report.jsonl"])


def test_the_stage_fails_only_when_no_paper_could_be_extracted(corpus, pdf_dir, tmp_path):
    reasons = bad_pdfs(tmp_path, pdf_dir / f"{corpus.papers[0]['id']}.pdf")
    with pytest.raises(StageError, match="no paper could be extracted"):
        extract_papers(manifest(reasons), tmp_path, tmp_path / "xml", tmp_path / "cache",
                       default_params("extract", engine="builtin"))
    with pytest.raises(StageError, match="lists no papers"):
        extract_papers([], tmp_path, tmp_path / "xml", tmp_path / "cache", default_params("extract", engine="builtin"))


def acl_style_pdf() -> bytes:
    """A paper with author-year citations and an unlabelled, hanging-indented reference list."""
    body = ParagraphStyle("b", fontName="Times-Roman", fontSize=10, leading=12.5, spaceAfter=6)
    head = ParagraphStyle("h", fontName="Times-Bold", fontSize=12, leading=15, spaceBefore=6, spaceAfter=4)
    ref = ParagraphStyle("r", fontName="Times-Roman", fontSize=9, leading=11, leftIndent=14, firstLineIndent=-14)
    story = [Paragraph("Author-Year Citations Without Labels", ParagraphStyle("t", fontName="Times-Bold", fontSize=15,
                                                                             leading=18, spaceAfter=8)),
             Paragraph("1 Introduction", head),
             Paragraph("Low-rank adapters train few parameters (Hu et al., 2021; Li and Liang, 2021). Quantized "
                       "adapters go further (Dettmers et al., 2023b). An earlier study by the same group looked at "
                       "8-bit matrix products (Dettmers et al., 2023a). Nobody is cited here (Nobody, 2020).", body),
             Paragraph("References", head)]
    for text in [
        "Tim Dettmers, Mike Lewis, Younes Belkada, and Luke Zettlemoyer. 2023a. LLM.int8(): 8-bit matrix "
        "multiplication for transformers at scale. In Advances in Neural Information Processing Systems, pages "
        "30318–30332.",
        "Tim Dettmers, Artidoro Pagnoni, Ari Holtzman, and Luke Zettlemoyer. 2023b. QLoRA: Efficient finetuning of "
        "quantized LLMs. arXiv preprint arXiv:2305.14314.",
        "Edward J. Hu, Yelong Shen, Phillip Wallis, Zeyuan Allen-Zhu, Yuanzhi Li, Shean Wang, Lu Wang, and Weizhu "
        "Chen. 2021. LoRA: Low-rank adaptation of large language models. arXiv preprint arXiv:2106.09685.",
        "Xiang Lisa Li and Percy Liang. 2021. Prefix-tuning: Optimizing continuous prompts for generation. In "
        "Proceedings of the 59th Annual Meeting of the Association for Computational Linguistics, pages 4582–4597.",
    ]:
        story.append(Paragraph(text, ref))
    buf = io.BytesIO()
    SimpleDocTemplate(buf, pagesize=LETTER, invariant=1).build(story)
    return buf.getvalue()


def test_author_year_citations_link_to_unlabelled_references(tmp_path):
    (tmp_path / "acl.pdf").write_bytes(acl_style_pdf())
    rows = extract_papers(manifest(["acl"]), tmp_path, tmp_path / "xml", tmp_path / "cache",
                          default_params("extract", engine="builtin"))
    assert rows[0]["n_refs"] == 4 and rows[0]["n_xrefs"] == 4
    cited, _ = citation_rows(jats.parse_jats(tmp_path / "xml/acl.xml"), "acl")
    got = [(r["marker"], r["ref_authors"].split(";")[0], r["ref_title"].split(":")[0], r["context"]) for r in cited]
    assert got == [
        ("(Hu et al., 2021; Li and Liang, 2021)", "Hu", "LoRA", "Low-rank adapters train few parameters."),
        ("(Hu et al., 2021; Li and Liang, 2021)", "Li", "Prefix-tuning", "Low-rank adapters train few parameters."),
        ("(Dettmers et al., 2023b)", "Dettmers", "QLoRA", "Quantized adapters go further."),
        ("(Dettmers et al., 2023a)", "Dettmers", "LLM.int8()",
         "An earlier study by the same group looked at 8-bit matrix products."),
    ]  # "(Nobody, 2020)" names no reference: not linked, nothing guessed


def segfault(pdf):
    os.kill(os.getpid(), signal.SIGSEGV)


def sleep_long(pdf):
    time.sleep(60)


@pytest.mark.timeout(20, func_only=True)  # the 60 s hangs are cut at 1.5 s
def test_a_pdf_that_crashes_or_hangs_the_pdf_library_costs_only_its_own_result(pdf_dir, corpus):
    jobs = [Job(p["id"], pdf_dir / f"{p['id']}.pdf") for p in corpus.papers[:2]]
    crashed = run_isolated(jobs, timeout=30, work=segfault)
    assert all(r.status == "failed" and "crashed" in r.error and "signal 11" in r.error for r in crashed.values())
    hung = run_isolated(jobs, timeout=1.5, work=sleep_long)
    assert all(r.status == "failed" and r.error == "timed out after 1.5 s" for r in hung.values())


# --- CERMINE, with a stand-in for java + the jar ----------------------------------------------------

@pytest.fixture
def fake_java(tmp_path, monkeypatch):
    """A `java` on PATH that runs the CERMINE stand-in, and a jar file for it to be given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    java = bin_dir / "java"
    java.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{cermine_standin.SCRIPT}" "$@"\n')
    java.chmod(0o755)
    jar = tmp_path / "cermine-impl-1.13-jar-with-dependencies.jar"
    jar.write_bytes(b"PK fake jar")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", CHECKOUT_FIRST["PYTHONPATH"])
    monkeypatch.delenv("CERMINE_JAR", raising=False)
    monkeypatch.delenv("CITETUNE_CERMINE_CMD", raising=False)
    monkeypatch.setenv("FAKE_CERMINE_LOG", str(tmp_path / "runs.log"))
    return jar


def cermine_params(jar, **kw):
    return default_params("extract", engine="cermine", cermine_jar=str(jar), java_heap="1g", **kw)


def test_cermine_runs_one_jvm_per_batch_and_its_jats_parses_like_the_builtin_one(fake_java, corpus, pdf_dir,
                                                                                 tmp_path, extracted):
    ids = [p["id"] for p in corpus.papers[:3]]
    (tmp_path / "pdf").mkdir()
    for i in ids:
        (tmp_path / "pdf" / f"{i}.pdf").write_bytes((pdf_dir / f"{i}.pdf").read_bytes())
    (tmp_path / "pdf" / "broken.pdf").write_text("%PDF-1.4 truncated")
    rows = extract_papers(manifest([*ids, "broken"]), tmp_path / "pdf", tmp_path / "xml", tmp_path / "cache",
                          cermine_params(fake_java, timeout_seconds=60))
    by_id = {r["paper_id"]: r for r in rows}
    assert {r["engine"] for r in rows} == {"cermine"}
    assert all(by_id[i]["status"] == "ok" for i in ids)
    assert by_id["broken"]["status"] == "failed"
    assert "CERMINE failed" in by_id["broken"]["error"] and "after one retry alone" in by_id["broken"]["error"]
    assert len((tmp_path / "runs.log").read_text().splitlines()) == 2  # the batch, then broken.pdf alone
    builtin_xml, _ = extracted
    for i in ids:
        raw = (tmp_path / "xml" / f"{i}.xml").read_text()
        assert re.search(r"\[\n\s+<xref ", raw)  # CERMINE's pretty-printed mixed content is kept as it is
        mine, _ = citation_rows(jats.parse_jats(tmp_path / "xml" / f"{i}.xml"), i)
        theirs, _ = citation_rows(article(builtin_xml, i), i)
        assert mine == theirs and mine  # pretty-printed CERMINE JATS gives the very same rows
    again = extract_papers(manifest(ids), tmp_path / "pdf", tmp_path / "xml", tmp_path / "cache",
                           cermine_params(fake_java))
    assert {r["status"] for r in again} == {"cached"}
    assert len((tmp_path / "runs.log").read_text().splitlines()) == 2  # no JVM started for cached PDFs


def test_cermine_runs_batches_of_the_given_size_several_jvms_at_a_time(fake_java, corpus, pdf_dir, tmp_path,
                                                                        monkeypatch):
    ids = [p["id"] for p in corpus.papers[:5]]
    monkeypatch.setenv("FAKE_CERMINE_TIMES", str(tmp_path / "times.log"))
    monkeypatch.setenv("FAKE_CERMINE_SECONDS_PER_PDF", "0.5")
    rows = extract_papers(manifest(ids), pdf_dir, tmp_path / "xml", tmp_path / "cache",
                          cermine_params(fake_java, batch_size=2, workers=2, timeout_seconds=60))
    assert [r["status"] for r in rows] == ["ok"] * 5
    runs = [line.split() for line in (tmp_path / "times.log").read_text().splitlines()]
    assert sorted(int(n) for n, *_ in runs) == [1, 2, 2]  # three JVMs: 2 + 2 + 1 PDFs
    spans = sorted((float(a), float(b)) for _, a, b in runs)
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))  # two ran at the same time
    assert sorted(p.stem for p in (tmp_path / "xml").glob("*.xml")) == sorted(ids)


def test_cermine_bare_index_rids_are_normalised(fake_java, corpus, pdf_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_CERMINE_RIDS", "index")
    paper = corpus.papers[0]
    rows = extract_papers(manifest([paper["id"]]), pdf_dir, tmp_path / "xml", tmp_path / "cache",
                          cermine_params(fake_java))
    assert rows[0]["status"] == "ok" and rows[0]["n_xrefs"] > 0
    art = jats.parse_jats(tmp_path / "xml" / f"{paper['id']}.xml")
    ids = {r.get("id") for r in art.iterfind(".//ref")}
    assert all(set(x.get("rid").split()) <= ids for x in art.iterfind(".//body//xref"))
    cited, _ = citation_rows(art, paper["id"])
    assert {r["ref_id"] for r in cited} == {f"ref{n}" for n in number_references(paper).values()}


@pytest.mark.slow  # waits out two 5 s timeouts
@pytest.mark.timeout(60, func_only=True)  # the stand-in hangs for an hour: it must cost 2 x 5 s
def test_cermine_hang_and_crash_are_killed_retried_alone_and_reported(fake_java, corpus, pdf_dir, tmp_path,
                                                                      monkeypatch):
    ids = [p["id"] for p in corpus.papers[:3]]
    monkeypatch.setenv("FAKE_CERMINE_HANG", ids[1])
    rows = extract_papers(manifest(ids), pdf_dir, tmp_path / "xml", tmp_path / "cache",
                          cermine_params(fake_java, timeout_seconds=5))
    by_id = {r["paper_id"]: r for r in rows}
    assert [by_id[i]["status"] for i in ids] == ["ok", "failed", "ok"]  # the one after the hang: retried alone
    assert by_id[ids[1]]["error"] == "CERMINE timed out after 5 s (after one retry alone)"
    pids = [int(line.split()[0]) for line in (tmp_path / "runs.log").read_text().splitlines()]
    for pid in pids:  # the hung runs were killed with their process group, not left behind
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    monkeypatch.delenv("FAKE_CERMINE_HANG")
    monkeypatch.setenv("FAKE_CERMINE_CRASH", ids[0])
    rows = extract_papers(manifest(ids), pdf_dir, tmp_path / "xml2", tmp_path / "cache2",
                          cermine_params(fake_java, timeout_seconds=60))
    by_id = {r["paper_id"]: r for r in rows}
    assert [by_id[i]["status"] for i in ids] == ["failed", "ok", "ok"]
    assert "exited with code 1" in by_id[ids[0]]["error"] and "OutOfMemoryError" in by_id[ids[0]]["error"]


def test_engine_choice_and_what_to_do_without_cermine(fake_java, tmp_path, monkeypatch):
    assert choose_engine("auto", fake_java) == "cermine"
    assert choose_engine("auto", tmp_path / "nothing.jar") == "builtin"
    assert choose_engine("builtin", fake_java) == "builtin"
    with pytest.raises(StageError, match=r"tools/cermine/fetch\.sh.*CERMINE_JAR.*extract\.engine: builtin"):
        choose_engine("cermine", tmp_path / "nothing.jar")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert choose_engine("auto", fake_java) == "builtin"
    with pytest.raises(StageError, match="java is not on PATH"):
        choose_engine("cermine", fake_java)


def test_extract_stage_command_line_with_the_cermine_command_replaced(corpus, pdf_dir, tmp_path):
    ids = [p["id"] for p in corpus.papers[:2]]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps({"paper_id": i}) + "\n" for i in ids))
    extract = default_params("extract", engine="cermine", cermine_jar="/nowhere.jar")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"extract": extract.model_dump(mode="json")}))
    env = dict(os.environ, **CHECKOUT_FIRST, CITETUNE_CERMINE_CMD=f"{sys.executable} {cermine_standin.SCRIPT}")
    cmd = [sys.executable, "-m", "stages.extract", "--params", str(tmp_path / "params.yaml"), "--manifest",
           str(tmp_path / "manifest.jsonl"), "--pdf-dir", str(pdf_dir), "--out-dir", str(tmp_path / "xml"),
           "--cache-dir", str(tmp_path / "cache")]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    report = read_jsonl(tmp_path / "xml/report.jsonl")
    assert [(x["paper_id"], x["engine"], x["status"]) for x in report] == [(i, "cermine", "ok") for i in ids]
    env.pop("CITETUNE_CERMINE_CMD")
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 1 and "tools/cermine/fetch.sh" in r.stderr and "Traceback" not in r.stderr


def test_superscripts_drawn_apart_from_their_line_are_citations_where_they_sit(tmp_path):
    """Some PDFs draw a superscript citation as text of its own, away from its sentence in the file."""
    paper = SmallPaper("Effects in larger cohorts")
    end = paper.write(72, 110, "Earlier studies found the same effect")
    paper.write(end + 0.5, 106, "1,2", size=6)  # drawn apart from its line
    paper.write(end + 9, 110, " in larger cohorts.")
    end = paper.write(72, 124, "Exponents such as 10")
    paper.write(end + 0.3, 120, "3", size=6)
    paper.write(160, 124, " are not citations of anything at all.")
    paper.write(72, 160, "References", size=12, bold=True)
    paper.lines(180, ["1. Smith J, Lee K. A first study of the effect. Nature. 2019;5:1-2.",
                      "2. Chen L. A second study of the effect. Science. 2020;6:3-4.",
                      "3. Park M. A third study. Cell. 2021;7:5-6."], step=14)
    pdf = paper.save(tmp_path / "apart.pdf")
    rows, _ = citation_rows(jats.parse_jats(jats.to_bytes(builtin.extract(pdf))), "apart")
    assert [(r["ref_id"], r["marker"]) for r in rows] == [("ref1", "1,2"), ("ref2", "1,2")]
    assert rows[0]["context"] == "Earlier studies found the same effect in larger cohorts."


def test_unlabelled_references_without_indent_or_spacing_split_at_each_name(tmp_path):
    paper = SmallPaper("Effects in larger cohorts")
    paper.lines(110, ["The effect was seen before (Smith and Lee, 2019; Chen, 2020), and in",
                      "children too (Park et al., 2021)."], step=13)
    paper.write(72, 150, "References", size=12, bold=True)
    # Same left edge, same line spacing: nothing but the names tells where an entry starts.
    paper.lines(170, ["Chen, L. (2020). A second study of the effect in adults and in", "children. Science, 6, 3-4.",
                      "Park, M., Kim, J., and Lee, S. (2021). A third study of the effect in", "children. Cell, 7, 5-6.",
                      "Smith, J. and Lee, K. (2019). A first study of the effect in a large", "cohort. Nature, 5, 1-2."])
    pdf = paper.save(tmp_path / "flat.pdf")
    article = jats.parse_jats(jats.to_bytes(builtin.extract(pdf)))
    refs = read_references(article)
    assert [r.authors.split(";")[0] for r in refs.values()] == ["Chen", "Park", "Smith"]
    rows, _ = citation_rows(article, "flat")
    cited = {r["ref_raw"].split(",")[0] for r in rows}
    assert cited == {"Chen", "Park", "Smith"}


def reference_list_pdf(path: Path, lines: list[tuple[float, str]]) -> Path:
    """A one-page paper whose reference list is the given (x, text) lines, one per 12 pt."""
    paper = SmallPaper("A short paper")
    paper.write(72, 110, "Some text that cites [1] and other works [2, 4] in one sentence.")
    paper.write(72, 140, "References", size=12, bold=True)
    paper.lines(160, lines)
    return paper.save(path)


def test_a_lost_label_does_not_swallow_the_entries_after_it(tmp_path):
    pdf = reference_list_pdf(tmp_path / "lost.pdf", [
        (72, "[1] Smith J, Lee K. A first study of the effect. Nature. 2019;5:1-2."),
        (72, "[2] Chen L. A second study. Science. 2020;6:3-4."),
        (90, "Smith J. An entry whose label the PDF does not give. Cell. 2021;7:5-6."),
        (72, "[4] Park M. A fourth study. Lancet. 2022;8:7-8."),
        (72, "[5] Kim S. A fifth study. BMJ. 2023;9:9-10."),
    ])
    refs = read_references(jats.parse_jats(jats.to_bytes(builtin.extract(pdf))))
    assert [r.label for r in refs.values()] == ["1", "2", "4", "5"]
    assert "Park" in refs["ref4"].raw and "Kim" not in refs["ref4"].raw


def test_a_short_unlabelled_list_without_indent_keeps_an_entry_whole(tmp_path):
    pdf = reference_list_pdf(tmp_path / "short.pdf", [
        (72, "Smith, J., Lee, K., and Park, M. (2019). A first study of the effect in a large"),
        (72, "cohort of patients followed for ten years. Nature, 5, 1-2."),
    ])
    refs = read_references(jats.parse_jats(jats.to_bytes(builtin.extract(pdf))))
    assert len(refs) == 1 and list(refs.values())[0].raw.endswith("Nature, 5, 1-2.")


@pytest.mark.timeout(10)  # catastrophic backtracking would not finish in time
def test_long_lists_of_capitalised_words_are_linked_in_no_time_and_rightly():
    """Names are matched by regular expressions: a list of countries must not make them backtrack."""
    from citetune.engines import citations

    index = citations.ReferenceIndex([citations.Entry("ref1", None, "smith, j. (2019). a study. nature.", "smith")])
    countries = ", ".join(["Germany", "France", "Italy", "Spain", "Poland", "Austria", "Belgium", "Denmark"] * 8)
    text = f"Data were collected in {countries} and Smith (2019) showed it (see Smith, 2019)."
    pieces = citations.link_paper([text], index)[0]
    assert [(p.content, p.attrs["rid"]) for p in pieces if not isinstance(p, str)] == [
        (["2019"], "ref1"), (["Smith, 2019"], "ref1")]


@pytest.mark.timeout(10)  # 20,000 lines: a quadratic join would not finish in time
def test_long_paragraphs_join_line_by_line_and_control_characters_never_reach_the_xml(tmp_path):
    lines = [f"line {n} of a very long paragraph that ends with a split word, hyphen-" if n % 2 else "ation here"
             for n in range(20_000)]  # each decision looks at one line: this is fast, not quadratic
    joined = join_lines(lines)
    assert joined.count("hyphenation here") == 9_999 and "hyphen- ation" not in joined
    paper = SmallPaper("A paper with broken glyphs")
    paper.write(72, 110, "Text with a control character \x07 from a broken font, citing [1].")
    paper.write(72, 140, "References", size=12, bold=True)
    paper.write(72, 160, "[1] A. Author, A title\x01 here, J. Phys. 1, 2 (2000).")
    paper.doc.set_metadata({"author": "Ann\x02 Author"})
    pdf = paper.save(tmp_path / "ctrl.pdf")
    xml = jats.to_bytes(builtin.extract(pdf))
    rows, _ = citation_rows(jats.parse_jats(xml), "ctrl")
    assert [r["ref_id"] for r in rows] == ["ref1"] and not re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]", xml)


def test_links_into_dvc_cache_are_followed_as_cache_type_symlink_makes_them(corpus, pdf_dir, tmp_path, monkeypatch):
    """`dvc config cache.type symlink` turns the workspace's PDFs into links into .dvc/cache: those are read,
    a link leading anywhere else still is not."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               DVC_NO_ANALYTICS="1")
    folder = tmp_path / "pdf"
    folder.mkdir()
    papers = [p["id"] for p in corpus.papers[:2]]
    for paper in papers:
        (folder / f"{paper}.pdf").write_bytes((pdf_dir / f"{paper}.pdf").read_bytes())
    for cmd in (["dvc", "init", "--no-scm", "-q"], ["dvc", "config", "cache.type", "symlink"],
                ["dvc", "add", "-q", "pdf"]):
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True)
    assert all((folder / f"{paper}.pdf").is_symlink() for paper in papers)
    (folder / "elsewhere.pdf").symlink_to(pdf_dir / f"{papers[0]}.pdf")
    monkeypatch.chdir(tmp_path)
    rows = [{"paper_id": paper} for paper in papers] + [{"paper_id": "elsewhere"}]
    report = extract_papers(rows, folder, tmp_path / "xml", tmp_path / "cache", default_params("extract"))
    assert [(r["paper_id"], r["status"]) for r in report] == [(papers[0], "ok"), (papers[1], "ok"),
                                                              ("elsewhere", "failed")]
    assert "symbolic link" in report[2]["error"]


def test_t1_glyph_codes_of_fonts_without_a_unicode_map_are_read_as_their_characters():
    """A Sweave paper whose T1 fonts carry no map to Unicode: the text layer gives the glyphs' codes
    (control characters) for ligatures, dashes and quotes; they come out as printed."""
    pdf = Path(__file__).resolve().parents[1] / "bench" / "gold_real" / "pdf" / "r03_ape_morani.pdf"
    raw = "".join(page.get_text() for page in pymupdf.open(pdf))
    assert "Cli\x1b" in raw and "139\x15142" in raw  # what the PDF holds
    text = jats.to_bytes(builtin.extract(pdf)).decode()
    assert "Cliff" in text and "139–142" in text and "coefficient" in text
    assert "“" in text and "”" in text
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", text)


def _reference_lines(sizes: list[float], gap_before: int | None = None) -> list[Line]:
    """One line per size, 12 pt apart (a blank line's space above line `gap_before`)."""
    lines, top = [], 100.0
    for n, size in enumerate(sizes):
        top += 24 if n == gap_before else 12
        lines.append(Line(0, 72, top, 500, top + size, f"line {n}", size, False))
    return lines


def _split(sizes: list[float], gap_before: int | None = None) -> zones.Zones:
    found = zones.Zones([], [], [], _reference_lines(sizes, gap_before), [], [], [])
    zones._split_off_tail(found)
    return found


def test_a_tail_set_off_from_the_list_is_split_off_by_type_and_no_line_is_lost():
    found = _split([9] * 6 + [7, 9, 7, 7, 7])
    assert [ln.text for ln in found.references] == [f"line {n}" for n in range(6)]
    assert [ln.text for ln in found.affiliations] == [f"line {n}" for n in range(6, 11)]  # the 9 pt one too
    found = _split([9] * 6 + [12, 12, 12, 12, 8.7, 12])  # an appendix's text, a line a little smaller amid it
    assert [ln.text for ln in found.back[0].lines] == [f"line {n}" for n in range(6, 12)]
    assert found.affiliations == []


def test_an_entrys_last_line_in_another_type_stays_in_the_list():
    for sizes in ([9] * 6 + [7], [9] * 6 + [7, 7]):  # a URL or DOI line set smaller
        found = _split(sizes)
        assert len(found.references) == len(sizes) and found.affiliations == []
    found = _split([9] * 6 + [7, 7], gap_before=6)  # two lines standing apart below the list: a note
    assert len(found.references) == 6 and len(found.affiliations) == 2


@pytest.mark.parametrize("text, number", [
    ("[1]. A. Smith, A title. Venue, 2019.", 1), ("[3] - J. Doe, A title. Venue, 2020.", 3),
    ("[12] B. Jones. Another title.", 12), ("[17], [18]. We have shown that it holds.", None),
    ("[2]–[4] show that it holds.", None), ("[5]. then it holds.", None), ("[6][7] show it.", None),
    ("[5]. The results of the trial hold.", None), ("[12]. van der Waals, J. D. On continuity.", 12),
    ("[13]. Smith J, Lee K. A title.", 13), ("[14]. WHO. World report.", 14), ("[15]. Ovretveit, J.: Title", 15)])
def test_an_entrys_label_is_told_from_a_citation_opening_a_line(text, number):
    assert zones.label_number(text) == number


@pytest.mark.parametrize("text, starts", [
    ("Background: Trials in many clinics are rare.", True), ("Methods: We ran a trial.", True),
    ("Abstract. We read papers by zones.", True), ("Keywords: deep learning, citations", False),
    ("Introduction: the problem", False), ("Results of the 2019 survey: most clinics", False),
    ("Keywords : survival, Cox models", False), ("Methods : We ran a trial.", True)])
def test_an_abstract_starts_at_its_word_or_a_structured_abstracts_first_label(text, starts):
    assert zones.starts_abstract(Line(0, 72, 100, 500, 110, text, 10.0, False)) is starts


def test_a_journals_running_line_is_dropped_and_a_numbered_heading_or_a_sentence_with_a_year_is_not():
    """Each stands alone in a page's top or bottom margin band, set like the running text, on one page only."""
    from citetune.engines.layout import drop_running_text

    def line(page, top, text):
        return Line(page, 72, top, 500, top + 10, text, 10.0, False)

    def body(page):
        return [line(page, 200 + 12 * n, f"Running text of the page, line {n} of many.") for n in range(5)]

    running, heading, sentence = ("Journal of Clinic Studies 12 (2019) 1-10", "4 Results from 1990 to 2010",
                                  "as reported in 2019 by 12 groups in Table 3")
    chemistry = "J. Am. Chem. Soc. 2019, 141, 1234−1240"  # a minus sign for the dash
    pages = [[line(0, 30, running)] + body(0), [line(1, 40, heading)] + body(1), body(2) + [line(2, 800, sentence)],
             body(3) + [line(3, 800, chemistry)]]
    kept = [ln.text for p in drop_running_text(pages, [842] * 4, "", 10.0) for ln in p]
    assert running not in kept and chemistry not in kept and heading in kept and sentence in kept


def test_a_missing_reference_model_stops_the_run_once_saying_what_to_do(monkeypatch, tmp_path):
    from citetune.refparse import crf

    pdf = Path(__file__).resolve().parents[1] / "bench" / "gold_real" / "pdf" / "r03_ape_morani.pdf"
    folder = tmp_path / "pdf"
    folder.mkdir()
    (folder / "a.pdf").write_bytes(pdf.read_bytes())
    monkeypatch.setattr(crf, "MODEL", tmp_path / "gone.crfsuite")
    crf.shipped_tagger.cache_clear()
    try:
        with pytest.raises(StageError, match="reinstall citetune") as error:
            extract_papers([{"paper_id": "a"}], folder, tmp_path / "xml", tmp_path / "cache", default_params("extract"))
    finally:
        crf.shipped_tagger.cache_clear()
    assert "gone.crfsuite" in str(error.value) and crf.REBUILD in str(error.value)
    assert not (tmp_path / "xml").exists()  # nothing written, nothing to undo


def test_only_fonts_that_show_t1_ligatures_are_read_as_t1():
    from citetune.engines.layout import t1_fonts

    def page(*spans):
        return {"blocks": [{"lines": [{"spans": [{"font": f, "text": t} for f, t in spans]}]}]}

    pages = [page(("F25", "di\x1berent coe\x1ecient"), ("F12", "Br\x0cndum Mart\x10nez")),  # T1; OT1 (fi at 0x0C)
             page(("F25", "pages 139\x15142"), ("CMMI10", "a\x1bb"), ("LMMathExtension10-Regular", "x\x1dy"),
                  ("F30", "\x15\x1b"))]  # codes with no word around them show no encoding
    assert t1_fonts(pages) == {"F25"}
