"""match: references printed in four styles, matched to their DOIs by the local index and by habanero
against a loopback Crossref; look-alike distractors, wrong printed DOIs and failing servers never
give a wrong DOI; the stage end to end."""

from __future__ import annotations

import gzip
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from lxml import etree

from citetune.columns import CITATION_COLUMNS
from citetune.ids import arxiv_doi, is_arxiv_id, is_doi
from citetune.io import read_csv
from citetune.matching import (
    CrossrefBackend,
    LocalIndex,
    LookupFailed,
    PrintedReference,
    load_records,
    make_backend,
    match_citations,
    match_reference,
    ref_key,
    validate,
)
from citetune.matching import local as local_module
from citetune.matching.record_files import UnreadableRecordFile
from citetune.params import default_params
from citetune.parse import parse_file, read_references
from citetune.sample import STYLES, format_reference
from citetune.testing.crossref_server import CrossrefServer, Limit
from citetune.testing.scripted_server import ScriptedServer

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data/sample/crossref.jsonl"
RECORDS = load_records(SAMPLE)
BY_DOI = {r["DOI"].lower(): r for r in RECORDS}
REAL = [r for r in RECORDS if not r["DOI"].startswith("10.5555/")]  # the distractors use the test prefix
JOURNAL = [r for r in REAL if not r["DOI"].startswith("10.48550/")]  # what Crossref itself holds
PARAMS = default_params("match")
FAST = {"backoff_seconds": 0.01}


def rec(doi: str) -> dict:
    return BY_DOI[doi.lower()]


def unmarked(raw: str) -> dict:
    """The citations row parse writes for a reference with no markup: its text and what is printed in it."""
    article = etree.fromstring("<article><back><ref-list><ref id='r1'><mixed-citation/></ref></ref-list></back></article>")
    article.find(".//mixed-citation").text = raw
    entry = read_references(article)["r1"]
    return {"ref_raw": entry.raw, "ref_year": entry.year, "ref_doi": entry.doi, "ref_arxiv": entry.arxiv}


def row_for(record: dict, style: str, parsed: bool = True) -> dict:
    """A citations row as parse fills it from marked-up fields (surnames, title unless physics, year, printed
    ids), or from a reference with no markup at all (raw text, and what parse finds printed in it)."""
    raw = format_reference(record, style)
    if not parsed:
        return unmarked(raw)
    arxiv = record["DOI"].split("arXiv.")[-1] if "arXiv." in record["DOI"] else ""
    return {
        "ref_raw": raw,
        "ref_authors": ";".join(a["family"] for a in record["author"] if a["family"] in raw),
        "ref_title": "" if style == "physics" else record["title"][0],
        "ref_year": str(record["issued"]["date-parts"][0][0]),
        "ref_doi": record["DOI"] if record["DOI"] in raw else "",
        "ref_arxiv": arxiv if f"arXiv:{arxiv}" in raw else "",
    }


def match(row: dict, backend, params=PARAMS):
    return match_reference(PrintedReference.from_row(row), backend, params)


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> LocalIndex:
    return LocalIndex.build(tmp_path_factory.mktemp("index") / "sample.sqlite", SAMPLE, progress=False)


# --- local backend --------------------------------------------------------------------------------

@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("parsed", [True, False], ids=["parsed", "raw-only"])
def test_local_matches_every_real_work(index, style, parsed):
    for record in REAL:
        m = match(row_for(record, style, parsed), index)
        assert (m.status, m.doi) == ("matched", record["DOI"]), (format_reference(record, style), m)
        assert m.title == record["title"][0]
        assert m.year == str(record["issued"]["date-parts"][0][0])
        assert 0 < m.score <= 100
        if record["DOI"] in format_reference(record, style):
            assert m.method == "printed_doi"
        elif style == "physics" and record in JOURNAL:
            assert m.method == "search" and "no title printed" in m.note  # volume and first page decided


def test_physics_reference_without_identifier_matches_on_volume_and_page(index):
    lstm = rec("10.1162/neco.1997.9.8.1735")
    row = {"ref_raw": "S. Hochreiter and J. Schmidhuber, Neural Computation 9, 1735 (1997).",
           "ref_authors": "Hochreiter;Schmidhuber", "ref_year": "1997"}
    m = match(row, index)
    assert (m.status, m.doi, m.method) == ("matched", lstm["DOI"], "search")
    assert "volume" in m.note
    # The same authors and year with another volume/page: no title to go on, so no match.
    m = match(dict(row, ref_raw="S. Hochreiter and J. Schmidhuber, Neural Computation 7, 512 (1997)."), index)
    assert m.status == "rejected" and m.doi == ""


def test_arxiv_only_physics_reference(index):
    m = match(unmarked("E. J. Hu et al., arXiv:2106.09685v2 (2021)."), index)
    assert (m.status, m.doi, m.method) == ("matched", "10.48550/arXiv.2106.09685", "arxiv_id")
    assert "no title printed" in m.note and "identifier" in m.note


@pytest.mark.parametrize("style", STYLES)
def test_distractors_alone_never_give_a_doi(style, tmp_path):
    """The true record removed, the look-alikes (same authors, similar titles) must all be refused."""
    rejected = 0
    for record in REAL:
        others = LocalIndex.from_records(tmp_path / f"{ref_key(record['DOI'])}.sqlite",
                                          [r for r in RECORDS if r is not record])
        for parsed in (True, False):
            m = match(row_for(record, style, parsed), others)
            assert m.status in ("not_found", "rejected") and m.doi == "" and m.method == "none", (
                format_reference(record, style), m)
            rejected += m.status == "rejected"
            if m.status == "rejected":
                assert "10.5555/" in m.note or "10.48550/" in m.note  # says which candidate and why
    assert rejected > len(REAL)  # distractors were found and refused, not merely missed


def test_printed_doi_of_another_paper_is_rejected(index, tmp_path):
    lstm, backprop = rec("10.1162/neco.1997.9.8.1735"), rec("10.1038/323533a0")
    for parsed in (True, False):
        row = row_for(lstm, "apa", parsed)
        row["ref_raw"] = row["ref_raw"].replace(lstm["DOI"], backprop["DOI"])
        if parsed:
            row["ref_doi"] = backprop["DOI"]
        else:
            row = unmarked(row["ref_raw"])
        m = match(row, index)
        # The wrong DOI is refused; the search still finds the work the reference describes.
        assert (m.status, m.doi, m.method) == ("matched", lstm["DOI"], "search")
        assert f"printed DOI {backprop['DOI']} is another work" in m.note
        without_true = LocalIndex.from_records(tmp_path / "without.sqlite", [r for r in RECORDS if r is not lstm])
        m = match(row, without_true)
        assert (m.status, m.doi) == ("rejected", "")
        assert backprop["DOI"] in m.note


def test_a_printed_doi_not_held_keeps_records_of_other_registrants_out(tmp_path):
    """A reference printing its journal DOI, which the index lacks, is not given the preprint's DOI
    (another registrant: another version of the work); one printed under the preprint's prefix still is."""
    journal = {"DOI": "10.1080/00031305.2017.1375990", "type": "journal-article",
               "title": ["Extending R with C++: A Brief Introduction to Rcpp"],
               "author": [{"given": "Dirk", "family": "Eddelbuettel"}, {"given": "James Joseph", "family": "Balamuta"}],
               "issued": {"date-parts": [[2018]]}, "container-title": ["The American Statistician"], "volume": "72"}
    preprint = dict(journal, DOI="10.7287/peerj.preprints.3188v1", issued={"date-parts": [[2017]]},
                    **{"container-title": ["PeerJ Preprints"], "volume": None})
    index = LocalIndex.from_records(tmp_path / "preprint-only.sqlite", [preprint, *RECORDS])
    raw = ("Eddelbuettel D, Balamuta JJ (2018). Extending R with C++: A Brief Introduction to Rcpp. "
           "The American Statistician, 72(1). doi:{}.")
    m = match(unmarked(raw.format(journal["DOI"])), index)
    assert (m.status, m.doi) == ("rejected", "")
    assert "not under the printed DOI's prefix 10.1080" in m.note and preprint["DOI"] in m.note
    # A typo in the printed DOI's prefix does not lose the journal version whose volume and pages are printed.
    journal_index = LocalIndex.from_records(tmp_path / "journal.sqlite", [dict(journal, page="28-36"), *RECORDS])
    m = match(unmarked(raw.format("10.1008/00031305.2017.1375990").replace("72(1).", "72(1), 28–36.")), journal_index)
    assert (m.status, m.doi) == ("matched", journal["DOI"]), m
    # Without a printed DOI, or with one of the preprint's registrant, the record is the work.
    for printed in (raw.replace(" doi:{}.", ""), raw.format("10.7287/peerj.preprints.3188")):
        m = match(unmarked(printed), index)
        assert (m.status, m.doi) == ("matched", preprint["DOI"]), m


def test_validation_rules():
    def record(family, title, year, **kw):
        return {"DOI": "10.1/x", "title": [title], "issued": {"date-parts": [[year]]},
                "author": [{"given": "A.", "family": family, "sequence": "first"}], **kw}

    p = PARAMS
    bitfit = "BitFit: Simple Parameter-efficient Fine-tuning for Transformer-based Masked Language-models"
    for printed in ("Zaken", "Ben Zaken", "Ben-Zaken", "BenZaken"):
        ref = PrintedReference(raw=f"E. {printed}, Y. Goldberg. {bitfit}. 2022.", authors=[printed], title=bitfit, year=2022)
        assert validate(ref, record("Ben Zaken", bitfit, 2021), p).accepted, printed
    kernel = "An introduction to kernel-based learning algorithms"
    for printed in ("Müller", "Muller", "Mueller", "MÜLLER"):
        ref = PrintedReference(raw=f"{printed}, K.-R. (2001). {kernel}.", authors=[printed], title=kernel, year=2001)
        assert validate(ref, record("Müller", kernel, 2001), p).accepted, printed
    assert not validate(PrintedReference(raw="x", authors=["Miller"], title=kernel, year=2001),
                        record("Müller", kernel, 2001), p).accepted
    lora = "LoRA: Low-Rank Adaptation of Large Language Models"
    ref = PrintedReference(raw=f"Z. Allen Zhu. 2021. {lora}.", authors=["Allen Zhu"], title=lora, year=2021)
    assert validate(ref, record("Allen-Zhu", lora, 2021), p).accepted
    # Year tolerance: a preprint and its journal version one year apart pass; two years do not.
    assert validate(ref, record("Allen-Zhu", lora, 2022), p).accepted
    v = validate(ref, record("Allen-Zhu", lora, 2023), p)
    assert not v.accepted and "year 2023" in v.note
    assert validate(ref, record("Allen-Zhu", lora, 2023), p.model_copy(update={"year_tolerance": 2})).accepted
    # Spelling and markup variants are the same title; one different word is another work.
    assert validate(ref, record("Allen-Zhu", "LoRA: low rank adaptation of large language <i>models</i>", 2021),
                    p).accepted
    ouyang = "Training language models to follow instructions with human feedback"
    ref = PrintedReference(raw="x", authors=["Ouyang"], title=ouyang, year=2022)
    v = validate(ref, record("Ouyang", ouyang.replace("with", "without"), 2022), p)
    assert not v.accepted and "without" in v.note
    assert validate(ref, record("Ouyang", ouyang.replace("instructions", "instruction"), 2022), p).accepted
    assert validate(ref, record("Ouyang", ouyang, 2022), p).score == 100.0



def test_validation_in_the_reference_text(tmp_path):
    """A parse gone wrong (title merged with the year, cut, or taken from the authors) is validated on the raw
    text when it holds the record's first author, title, year and venue; a look-alike never is."""
    title = "Giant magnetoresistance in graphene at low temperatures"

    def record(doi, family, year, volume, page, title=title, container="Physical Review B"):
        return {"DOI": doi, "type": "journal-article", "title": [title], "issued": {"date-parts": [[year]]},
                "author": [{"given": "Alexei", "family": family, "sequence": "first"},
                           {"given": "Mehmet", "family": "Yilmaz", "sequence": "additional"}],
                "container-title": [container], "short-container-title": ["Phys. Rev. B"],
                "volume": str(volume), "page": str(page)}

    true = record("10.1103/physrevb.61.172457", "Shevchenko", 2000, 61, 172457)
    raw = f"Shevchenko, A., Yılmaz, M. (2000 {title}. Physical Review B 61, 172457"
    wrong_parse = PrintedReference(raw=raw, authors=["Shevchenko", "Yılmaz"], title="", year=2000)
    wrong_parse.title = f"2000 {title}"  # the year merged into the title, as parse read it
    v = validate(wrong_parse, true, PARAMS)
    assert v.accepted and v.note.startswith("validated on the reference text")
    for field in ("first author", "title", "year", "container", "volume", "first page"):
        assert field in v.note, field
    cut = PrintedReference(raw=raw.replace("graphene at", "graphene. At"), authors=["Shevchenko"],
                           title="Giant magnetoresistance in graphene", year=2000)
    assert validate(cut, true, PARAMS).accepted
    # Parse took a co-author's line for the title: the raw text still holds the whole record.
    initials = PrintedReference(raw=f"SDK Shevchenko, M. Yilmaz, {title}. Phys. Rev. B 61, 172457 (2000).",
                                authors=["Yilmaz"], title="M. Yilmaz", year=2000)
    v = validate(initials, true, PARAMS)
    assert v.accepted and "container abbreviation" in v.note
    # Look-alikes: the same title in another year and volume; another first author; another title by the same
    # authors in the same issue; the preprint (no volume, another venue); an erratum.
    look_alikes = [
        record("10.1103/a", "Shevchenko", 2008, 77, 172457),
        record("10.1103/b", "Novak", 2000, 61, 172457),
        record("10.1103/c", "Shevchenko", 2000, 61, 172458, title="Giant magnetoresistance in graphene bilayers"),
        {**record("10.2139/d", "Shevchenko", 2000, "", "", container="SSRN Electronic Journal"),
         "short-container-title": []},
        record("10.1103/e", "Shevchenko", 2000, 61, 172457, title=f"Erratum: {title}"),
    ]
    for ref in (wrong_parse, cut, initials):
        for other in look_alikes:
            v = validate(ref, other, PARAMS)
            assert not v.accepted, (ref.raw, other["DOI"], v.note)
            assert "in the reference text:" in v.note  # which fields the text holds, even when rejected
    other_year = validate(wrong_parse, look_alikes[0], PARAMS)
    assert "year" not in other_year.note.split("in the reference text:")[1]
    # Through the local index, the raw string among the look-alikes finds the right DOI, and only it.
    index = LocalIndex.from_records(tmp_path / "x.sqlite", [true, *look_alikes])
    m = match_reference(wrong_parse, index, PARAMS)
    assert (m.status, m.doi) == ("matched", true["DOI"]) and "title" in m.note
    alone = LocalIndex.from_records(tmp_path / "y.sqlite", look_alikes)
    assert match_reference(wrong_parse, alone, PARAMS).doi == ""


def test_load_records_formats(tmp_path):
    recs = RECORDS[:3]
    (tmp_path / "list.json").write_text(json.dumps(recs))
    (tmp_path / "api.json").write_text(json.dumps({"status": "ok", "message": {"items": recs}}))
    with gzip.open(tmp_path / "snap.jsonl.gz", "wt") as f:
        f.write("\n".join(json.dumps(r) for r in recs) + "\n{not json\n" + json.dumps({"title": ["no DOI"]}) + "\n")
    for name in ("list.json", "api.json", "snap.jsonl.gz"):
        assert [r["DOI"] for r in load_records(tmp_path / name)] == [r["DOI"] for r in recs]
    assert len(load_records(tmp_path)) == 9
    with pytest.raises(FileNotFoundError):
        load_records(tmp_path / "missing.jsonl")


# --- Crossref backend through habanero ---------------------------------------------------------------

@pytest.fixture(scope="module")
def crossref():
    # Crossref holds the journal and proceedings works and the look-alikes, not arXiv's DataCite DOIs.
    with CrossrefServer([r for r in RECORDS if not r["DOI"].startswith("10.48550/")]) as srv:
        yield srv


def backend_for(srv, cache, **kw) -> CrossrefBackend:
    return CrossrefBackend(srv.base_url, "tests@example.org", 5, Path(cache) / "crossref.sqlite", **(FAST | kw))


@pytest.mark.parametrize("style", STYLES)
def test_crossref_matches_every_real_work(crossref, tmp_path, style):
    be = backend_for(crossref, tmp_path)
    for record in REAL:
        for parsed in (True, False):
            m = match(row_for(record, style, parsed), be)
            assert (m.status, m.doi) == ("matched", record["DOI"]), (format_reference(record, style), m)
            if record in JOURNAL:
                assert m.title == record["title"][0] and m.method in ("printed_doi", "search")
            else:  # accepted by construction, and the note says so
                assert m.method == "arxiv_id" and "not checked" in m.note
    assert any("mailto:tests@example.org" in ua for ua in crossref.user_agents)  # the polite pool


def test_crossref_distractors_and_wrong_doi(tmp_path):
    lstm, backprop = rec("10.1162/neco.1997.9.8.1735"), rec("10.1038/323533a0")
    held = [r for r in RECORDS if not r["DOI"].startswith("10.48550/") and r not in JOURNAL]
    with CrossrefServer(held + [backprop]) as srv:
        be = backend_for(srv, tmp_path)
        for record in JOURNAL:
            for style in STYLES:
                m = match(row_for(record, style), be)
                if record is backprop:
                    assert m.doi == backprop["DOI"]
                else:
                    assert m.status in ("not_found", "rejected") and m.doi == "", (format_reference(record, style), m)
        row = row_for(lstm, "acm")
        row["ref_raw"] = row["ref_raw"].replace(lstm["DOI"], backprop["DOI"])
        row["ref_doi"] = backprop["DOI"]
        m = match(row, be)
        assert (m.status, m.doi) == ("rejected", "") and backprop["DOI"] in m.note


def test_crossref_429_then_success_honours_retry_after(crossref, tmp_path):
    be = backend_for(crossref, tmp_path)
    row = row_for(rec("10.1038/323533a0"), "physics")  # no DOI printed: one search request
    before = crossref.hits["search"]
    crossref.fail(429, times=1, retry_after="1")
    t = time.monotonic()
    m = match(row, be)
    assert time.monotonic() - t >= 0.9  # waited as asked, not the 0.01 s backoff
    assert (m.status, m.doi) == ("matched", "10.1038/323533a0")
    assert crossref.hits["search"] - before == 2


def test_crossref_dropped_connection_is_retried(crossref, tmp_path):
    crossref.fail("drop", times=1)
    m = match(row_for(rec("10.1038/nature14539"), "apa"), backend_for(crossref, tmp_path))
    assert (m.status, m.doi, m.method) == ("matched", "10.1038/nature14539", "printed_doi")


def test_crossref_500_storm_is_an_error_for_that_reference_only(crossref, tmp_path):
    lstm = rec("10.1162/neco.1997.9.8.1735")
    others = [rec("10.1038/323533a0"), rec("10.3115/1073083.1073135"), rec("10.48550/arXiv.2106.09685")]
    rows = [row_for(r, s) for r, s in zip([lstm, *others], ["apa", "physics", "vancouver", "acm"], strict=True)]
    df = pd.DataFrame([dict({c: "" for c in CITATION_COLUMNS}, paper_id="p1", sentence_id=str(i), **r)
                       for i, r in enumerate(rows)])
    crossref.fail(500, times=None, when="neco.1997", json_body=True)
    crossref.fail(500, times=None, when="Hochreiter")
    try:
        be = backend_for(crossref, tmp_path, max_attempts=3)
        refs, cites, metrics = match_citations(df, be, PARAMS, progress=False)
    finally:
        crossref.faults.clear()
    by_doi = dict(zip(refs["ref_raw"], refs["match_status"], strict=True))
    assert by_doi[rows[0]["ref_raw"]] == "error"
    note = refs.loc[refs["ref_raw"] == rows[0]["ref_raw"], "match_note"].item()
    assert "HTTP 500" in note and "after 3 attempts" in note
    assert [by_doi[r["ref_raw"]] for r in rows[1:]] == ["matched"] * 3
    assert metrics["by_status"]["error"] == 1 and metrics["matched"] == 3 and metrics["citations_with_doi"] == 3
    # Failures are not cached: once Crossref recovers, a rerun matches the reference.
    refs, _, metrics = match_citations(df, backend_for(crossref, tmp_path), PARAMS, progress=False)
    assert metrics["matched"] == 4


def test_crossref_answers_are_cached(crossref, tmp_path):
    rows = [row_for(r, s) for r in JOURNAL[:4] for s in ("physics", "apa")]
    df = pd.DataFrame(rows)
    first, _, _ = match_citations(df, backend_for(crossref, tmp_path), PARAMS, progress=False)
    n = crossref.requests()
    be = backend_for(crossref, tmp_path)
    again, _, _ = match_citations(df, be, PARAMS, progress=False)
    assert crossref.requests() == n and be.requests == 0 and be.cache_hits > 0
    pd.testing.assert_frame_equal(first, again)
    assert (tmp_path / "crossref.sqlite").exists()
    assert not any(b"tests@example.org" in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


# --- the stage ----------------------------------------------------------------------------------------

def _citations_csv(path: Path) -> pd.DataFrame:
    works = [(rec("10.48550/arXiv.2106.09685"), "acm"), (rec("10.1162/neco.1997.9.8.1735"), "physics"),
             (rec("10.3115/v1/D14-1162"), "vancouver"), (rec("10.48550/arXiv.1810.04805"), "apa")]
    rows = []
    for paper in ("2401.00001", "2401.00002"):
        for i, (record, style) in enumerate(works):
            rows.append(dict({c: "" for c in CITATION_COLUMNS}, paper_id=paper, sentence_id=f"{paper}-s{i}",
                             sentence=f"A claim [{i + 1}].", context="A claim.", marker=f"[{i + 1}]",
                             ref_id=f"ref{i + 1}", ref_label=str(i + 1), **row_for(record, style)))
    rows.append(dict({c: "" for c in CITATION_COLUMNS}, paper_id="2401.00002", sentence_id="x",
                     ref_raw="J. Doe. 2020. A Study of Nothing in Particular. Journal of Nowhere 1, 1–2."))
    df = pd.DataFrame(rows, columns=CITATION_COLUMNS)
    df.to_csv(path, index=False)
    return df


def _run_stage(tmp_path: Path, match_params: dict, env: dict | None = None) -> subprocess.CompletedProcess:
    match_params = default_params("match", **match_params).model_dump(mode="json")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"match": match_params}))
    args = [sys.executable, "-m", "stages.match", "--params", str(tmp_path / "params.yaml"),
            "--citations", str(tmp_path / "in.csv"), "--references", str(tmp_path / "out/references.csv"),
            "--out", str(tmp_path / "out/citations.csv"), "--metrics", str(tmp_path / "metrics.json"),
            "--cache", str(tmp_path / "cache/crossref.sqlite"), "--index-dir", str(tmp_path / "cache/index"),
            "--scores", str(tmp_path / "scores.json")]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_stage_end_to_end_local(tmp_path):
    df = _citations_csv(tmp_path / "in.csv")
    proc = _run_stage(tmp_path, {"backend": "local", "records": str(SAMPLE)})
    assert proc.returncode == 0, proc.stderr
    refs = read_csv(tmp_path / "out/references.csv")
    cites = read_csv(tmp_path / "out/citations.csv")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert len(refs) == 5 and refs["ref_key"].is_unique
    assert refs["ref_key"].tolist() == [ref_key(r) for r in refs["ref_raw"]]
    assert sorted(refs["n_citations"].astype(int)) == [1, 2, 2, 2, 2]
    matched = refs[refs["match_status"] == "matched"]
    assert set(matched["doi"]) == {"10.48550/arXiv.2106.09685", "10.1162/neco.1997.9.8.1735",
                                   "10.3115/v1/D14-1162", "10.48550/arXiv.1810.04805"}
    assert (matched["match_title"] != "").all() and (matched["match_year"] != "").all()
    doe = refs[refs["ref_raw"].str.startswith("J. Doe")].iloc[0]
    assert doe["match_status"] in ("not_found", "rejected") and doe["doi"] == "" and doe["match_note"]
    assert len(cites) == len(df) and list(cites.columns) == [*CITATION_COLUMNS, "ref_key", "doi", "match_method",
                                                             "match_score", "match_status"]
    assert cites["doi"].ne("").sum() == 8
    assert metrics["references"] == 5 and metrics["matched"] == 4 and metrics["citations_with_doi"] == 8
    assert metrics["by_method"]["search"] == 1 and metrics["match_rate"] == 0.8


def test_stage_end_to_end_crossref_keeps_the_contact_out_of_outputs(crossref, tmp_path):
    _citations_csv(tmp_path / "in.csv")
    proc = _run_stage(tmp_path, {"backend": "crossref", "api_url": crossref.base_url, "timeout_seconds": 5},
                      env={"CROSSREF_MAILTO": "stage-contact@example.org"})
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["matched"] == 4 and metrics["by_method"]["arxiv_id"] == 2
    assert any("mailto:stage-contact@example.org" in ua for ua in crossref.user_agents)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "params.yaml"]
    assert (tmp_path / "cache/crossref.sqlite").exists()
    assert not any(b"stage-contact@example.org" in p.read_bytes() for p in written)


def test_stage_explains_missing_inputs(tmp_path):
    proc = _run_stage(tmp_path, {"backend": "local", "records": str(SAMPLE)})
    assert proc.returncode == 1 and "run the merge stage first" in proc.stderr
    _citations_csv(tmp_path / "in.csv")
    proc = _run_stage(tmp_path, {"backend": "local", "records": str(tmp_path / "nope.jsonl")})
    assert proc.returncode == 1 and "set match.records" in proc.stderr


def test_crossref_lookup_of_dois_with_url_special_characters(tmp_path):
    sici = "10.1002/(SICI)1097-4571(199806)49:8<693::AID-ASI4>3.0.CO;2-0"
    odd = "10.1000/a?b#c"
    records = [{"DOI": d, "title": [t], "author": [{"family": "Doe"}], "issued": {"date-parts": [[1998]]}}
               for d, t in ((sici, "One"), (odd, "Two"))]
    with CrossrefServer(records) as srv:
        be = backend_for(srv, tmp_path)
        assert be.lookup(sici)["title"] == ["One"] and be.lookup(odd)["title"] == ["Two"]
        assert be.lookup("10.1000/absent") is None


# --- Crossref's limits, faults and the cache -----------------------------------------------------------

def _search_rows(n: int) -> pd.DataFrame:
    """n distinct references that each need one search (physics style: no DOI, no title printed)."""
    rows = []
    for i in range(n):
        record = JOURNAL[i % len(JOURNAL)]
        row = row_for(record, "physics")
        row["ref_raw"] += f" [{i}]"  # distinct text, same work
        rows.append(dict({c: "" for c in CITATION_COLUMNS}, paper_id="p", sentence_id=str(i), **row))
    return pd.DataFrame(rows)


def test_crossref_polite_limits_are_kept_with_several_requests_in_flight(tmp_path):
    with CrossrefServer([r for r in RECORDS if not r["DOI"].startswith("10.48550/")]) as srv:
        srv.limits = {"search": Limit(rate=3, interval=1.0, concurrency=3)}
        srv.latency = 0.4  # slower than 1/3 s: reaching the allowed rate needs requests in flight together
        refs, _, _ = match_citations(_search_rows(12), backend_for(srv, tmp_path), PARAMS, progress=False)
    assert (refs["match_status"] == "matched").all()
    assert srv.too_many["search"] == 0 and srv.hits["search"] == 12
    assert srv.max_in_flight("search") >= 2  # several at once, as Crossref allows
    assert srv.max_in_flight("search") <= 3 and srv.rate("search") <= 3


def test_crossref_rate_is_lowered_when_its_headers_say_less(tmp_path):
    with CrossrefServer([r for r in RECORDS if not r["DOI"].startswith("10.48550/")]) as srv:
        srv.limits = {"search": Limit(rate=3, interval=1.0, concurrency=3)}
        srv.advertise = {"search": (2, 1.0)}  # enforced, and said in x-rate-limit-limit / -interval
        srv.latency = 0.05
        be = backend_for(srv, tmp_path)
        refs, _, _ = match_citations(_search_rows(10), be, PARAMS, progress=False)
    assert (refs["match_status"] == "matched").all()
    assert be.limiters["search"].rate == 2.0
    assert srv.too_many["search"] <= 1  # at most the one already on its way when the first answer came


def test_public_pool_without_a_contact_keeps_one_request_in_flight(tmp_path):
    with CrossrefServer([r for r in RECORDS if not r["DOI"].startswith("10.48550/")]) as srv:
        srv.latency = 0.1
        be = CrossrefBackend(srv.base_url, None, 5, tmp_path / "c.sqlite", backoff_seconds=0.01)
        assert (be.limiters["search"].rate, be.limiters["search"].concurrency) == (1.0, 1)
        assert (be.limiters["lookup"].rate, be.limiters["lookup"].concurrency) == (5.0, 1)
        match_citations(_search_rows(3), be, PARAMS, progress=False)
    assert srv.max_in_flight("search") == 1
    assert not any("mailto" in ua for ua in srv.user_agents)


def test_crossref_429_storm_timeouts_and_malformed_answers(tmp_path):
    with CrossrefServer([r for r in RECORDS if not r["DOI"].startswith("10.48550/")]) as srv:
        srv.fail(429, times=4, retry_after="0")
        srv.timeout_sleep = 3
        srv.fail("timeout", times=1)
        df = _search_rows(4)
        victim = df.loc[2, "ref_raw"]
        srv.fail("malformed", times=None, when=victim.split(",")[0].split()[-1])
        be = CrossrefBackend(srv.base_url, "tests@example.org", 1, tmp_path / "c.sqlite", backoff_seconds=0.01)
        refs, cites, metrics = match_citations(df, be, PARAMS, progress=False)
    status = dict(zip(refs["ref_raw"], refs["match_status"], strict=True))
    assert status.pop(victim) == "error"  # recorded for that reference, not fatal for the run
    assert set(status.values()) == {"matched"}
    note = refs.loc[refs["ref_raw"] == victim, "match_note"].item()
    assert "malformed answer" in note
    assert cites.loc[cites["ref_raw"] == victim, "match_status"].item() == "error"  # every citation keeps it
    assert srv.too_many == {} or sum(srv.too_many.values()) == 0


@pytest.mark.timeout(20)  # without a whole-request deadline the answer takes a minute to trickle in
def test_an_answer_trickled_a_byte_at_a_time_ends_at_the_request_deadline(tmp_path):
    answer = json.dumps({"status": "ok", "message": {"items": [], "total-results": 0}}).encode().ljust(300)
    with ScriptedServer(body=answer, trickle_seconds=0.2) as srv:  # each byte well within the read timeout
        be = CrossrefBackend(srv.base_url, "tests@example.org", 1, tmp_path / "c.sqlite", max_attempts=1)
        started = time.monotonic()
        with pytest.raises(LookupFailed, match=rf"no whole answer from {srv.base_url}/works\?\S+ within 1 s") as e:
            be.search("Hochreiter Long short-term memory", 2)
        assert time.monotonic() - started < 4
    assert e.value.retryable  # a later try may well succeed


@pytest.mark.timeout(20)  # headers trickled without end: the per-read timeout alone never ends them
def test_headers_that_never_end_are_cut_off_at_the_request_deadline(tmp_path):
    with ScriptedServer(header_trickle_seconds=0.1) as srv:
        be = CrossrefBackend(srv.base_url, "tests@example.org", 1, tmp_path / "c.sqlite", max_attempts=1)
        started = time.monotonic()
        with pytest.raises(LookupFailed, match=rf"no whole answer from {srv.base_url}/works/10.1000/x within 1 s") as e:
            be.lookup("10.1000/x")
        assert time.monotonic() - started < 2
    assert e.value.retryable


def test_a_retry_after_beyond_the_ceiling_stops_the_stage_and_a_rerun_resumes_from_the_cache(tmp_path):
    df = _search_rows(6)
    df.to_csv(tmp_path / "in.csv", index=False)
    stage = {"backend": "crossref", "timeout_seconds": 5, "backoff_seconds": 0.01, "search_rate": 50,
             "search_concurrency": 3, "max_retry_after_seconds": 30}
    with CrossrefServer([r for r in RECORDS if not r["DOI"].startswith("10.48550/")]) as srv:
        for i in (3, 4, 5):
            srv.fail(429, times=None, when=f"[{i}]", retry_after="86400", json_body=True)
        started = time.monotonic()
        proc = _run_stage(tmp_path, {**stage, "api_url": srv.base_url})
        assert time.monotonic() - started < 60
        assert proc.returncode == 1
        assert "asked for a pause of 86400 s" in proc.stderr and "match.max_retry_after_seconds = 30" in proc.stderr
        assert "run the stage again later" in proc.stderr and "Traceback" not in proc.stderr
        refused = [st for kind, _, _, st in srv.log if st == 429]
        assert 1 <= len(refused) <= 3  # at most the requests in flight when the first answer came; none retried
        refs = read_csv(tmp_path / "out/references.csv")  # what was done is kept
        status = dict(zip(refs["ref_raw"], refs["match_status"], strict=True))
        assert all(status[raw] == "error" for raw in df["ref_raw"] if raw.endswith(("[3]", "[4]", "[5]")))
        assert set(status.values()) <= {"matched", "error"}
        errors = refs[refs["match_status"] == "error"]
        assert errors["match_note"].str.contains("stopped asking Crossref: it asked for a pause of 86400 s").all()
        # The (git-tracked) figures are not those of a stopped run.
        assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "scores.json").exists()

        srv.faults.clear()
        asked = srv.requests()
        proc = _run_stage(tmp_path, {**stage, "api_url": srv.base_url})
        assert proc.returncode == 0, proc.stderr
        assert srv.requests() - asked == len(errors)  # only what the stopped run had no answer for
    assert (read_csv(tmp_path / "out/references.csv")["match_status"] == "matched").all()
    assert json.loads((tmp_path / "metrics.json").read_text())["by_status"]["matched"] == len(df)


def test_requests_waiting_to_retry_are_not_sent_once_crossref_said_stop(tmp_path):
    with CrossrefServer(RECORDS) as srv:
        srv.fail(500, times=None, when="10.1000/busy")
        srv.fail(429, times=None, when="10.1000/refused", retry_after="86400")
        be = CrossrefBackend(srv.base_url, "tests@example.org", 5, tmp_path / "c.sqlite", max_attempts=5,
                             backoff_seconds=0.5, max_wait_seconds=30)
        failed = []
        retrying = threading.Thread(target=lambda: failed.append(pytest.raises(LookupFailed, be.lookup, "10.1000/busy")))
        retrying.start()
        while not srv.hits["work"]:  # the first try answered 500: its retry waits half a second
            time.sleep(0.01)
        with pytest.raises(LookupFailed, match="stopped asking Crossref: it asked for a pause of 86400 s"):
            be.lookup("10.1000/refused")
        retrying.join(10)
        assert srv.hits["work"] == 2  # the retry was never sent
        assert "stopped asking Crossref" in str(failed[0].value) and not failed[0].value.retryable


@pytest.mark.parametrize("body", [b'"Too many requests: slow down"', b'["Too many requests: slow down"]',
                                  b'{"message": "Too many requests: slow down"}',
                                  b'{"status": "error", "message": [{"type": "x", "message": "Too many requests: '
                                  b'slow down"}]}'])
def test_an_error_status_says_the_status_and_the_servers_message_whatever_its_json(tmp_path, body):
    with ScriptedServer(status=429, body=body, headers={"Retry-After": "0"}) as srv:
        be = CrossrefBackend(srv.base_url, "tests@example.org", 5, tmp_path / "c.sqlite", max_attempts=2,
                             backoff_seconds=0)
        for ask in (lambda: be.search("Hochreiter Long short-term memory", 2), lambda: be.lookup("10.1000/x")):
            with pytest.raises(LookupFailed) as e:
                ask()
            assert str(e.value).startswith("HTTP 429 Too Many Requests from http://127.0.0.1")
            assert "Too many requests: slow down (after 2 attempts)" in str(e.value)
        assert len(srv.paths) == 4  # each retried once: a 429 is worth another try


def test_identifiers_are_checked_before_they_become_dois_or_urls():
    assert is_doi("10.1000/xyz") and is_doi("10.1000.5/a..b") and is_doi("10.1002/(SICI)1097-4571(199806)49:8<693::AID")
    for bad in ("10.1000/../../etc/passwd", "10.1000/a/./b", "10.1000/a/..", "10.x/y", "10.1000/", "11.1000/x",
                "10.1000/a b", "10.1000/x\n"):
        assert not is_doi(bad), bad
    for good in ("2101.00001", "2101.00001v2", "0704.0001", "hep-th/9901001", "math.GT/0309136v1"):
        assert is_arxiv_id(good), good
    assert not is_arxiv_id("2101.00001\n")  # arxiv_doi strips the white space around an id first
    for bad in ("../../etc/passwd", "2101.00001/../x", "hep-th/9901001/..", "2101.1"):
        assert not is_arxiv_id(bad), bad
        with pytest.raises(ValueError, match="is not an arXiv id"):
            arxiv_doi(bad)
    assert arxiv_doi("hep-th/9901001v2") == "10.48550/arXiv.hep-th/9901001"


def test_traversal_identifiers_never_reach_the_api_path(tmp_path):
    with CrossrefServer(JOURNAL) as srv:
        be = backend_for(srv, tmp_path)
        assert be.lookup("10.1000/../../etc/passwd") is None and srv.requests() == 0
        row = {"ref_raw": "J. Doe. 2020. A Study of Nothing. Journal of Nowhere 1, 1-2.",
               "ref_doi": "10.1000/../../etc/passwd", "ref_arxiv": "../../etc/passwd"}
        m = match(row, be)
    assert m.status != "matched" and not m.doi
    assert "printed DOI '10.1000/../../etc/passwd' is not a well-formed DOI" in m.note
    assert "printed arXiv id '../../etc/passwd' is not an arXiv id" in m.note
    assert srv.hits == {"search": 1} and not any("passwd" in p for p in srv.paths)


def test_a_doi_goes_into_the_path_percent_encoded(tmp_path):
    with ScriptedServer(status=404, body=b"Resource not found.", content_type="text/plain") as srv:
        be = CrossrefBackend(srv.base_url, "tests@example.org", 5, tmp_path / "c.sqlite")
        assert be.lookup("10.1000/a?b#c/%2e%2e") is None
    assert srv.paths == ["/works/10.1000/a%3Fb%23c/%252e%252e"]  # not /works/10.1000/a/..


def test_a_warm_cache_asks_nothing_and_offline_answers_from_it_alone(tmp_path):
    df = _search_rows(5)
    with CrossrefServer([r for r in RECORDS if not r["DOI"].startswith("10.48550/")]) as srv:
        first, _, _ = match_citations(df, backend_for(srv, tmp_path), PARAMS, progress=False)
        n = srv.requests()
        strict = default_params("match", min_title_similarity=95)  # a threshold changed: same requests, new decisions
        be = backend_for(srv, tmp_path)
        match_citations(df, be, strict, progress=False)
        assert srv.requests() == n and be.requests == 0
    offline = backend_for(srv, tmp_path, offline=True)  # the server is gone
    again, _, _ = match_citations(df, offline, PARAMS, progress=False)
    pd.testing.assert_frame_equal(first, again)
    new = pd.DataFrame([dict(row_for(JOURNAL[0], "apa"), ref_raw="A. Nobody. 2020. Not asked before. J. 1, 2.")])
    refs, _, _ = match_citations(new, offline, PARAMS, progress=False)
    assert refs["match_status"].item() == "error" and "offline and not in the cache" in refs["match_note"].item()


def test_the_crossref_plus_token_is_sent_when_given(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSREF_PLUS_TOKEN", "secret-token")
    with CrossrefServer([r for r in RECORDS if not r["DOI"].startswith("10.48550/")]) as srv:
        backend_for(srv, tmp_path).search("Hochreiter Long short-term memory", 2)
    assert srv.tokens == ["Bearer secret-token"]
    assert b"secret-token" not in (tmp_path / "crossref.sqlite").read_bytes()


# --- the local index -----------------------------------------------------------------------------------

def test_local_index_reads_the_public_data_file_layout_and_grows_incrementally(tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    for k, part in enumerate((RECORDS[:50], RECORDS[50:100])):
        with gzip.open(dump / f"{k}.json.gz", "wt") as f:
            json.dump({"items": part}, f)
    index = LocalIndex.build(tmp_path / "dump.sqlite", dump, progress=False)
    assert len(index) == 100 and index.lookup(RECORDS[10]["DOI"].upper())["DOI"] == RECORDS[10]["DOI"]
    reads = []
    original = local_module.rows_of_file
    monkey = pytest.MonkeyPatch()
    monkey.setattr(local_module, "rows_of_file", lambda f: (reads.append(f.name), original(f))[1])
    try:
        with gzip.open(dump / "2.json.gz", "wt") as f:
            json.dump({"items": RECORDS[100:]}, f)
        index = LocalIndex.build(tmp_path / "dump.sqlite", dump, progress=False)
        assert reads == ["2.json.gz"] and len(index) == len(RECORDS)  # only the new file is read
        changed = dict(RECORDS[0], title=["A corrected title"])
        with gzip.open(dump / "0.json.gz", "wt") as f:
            json.dump({"items": [changed, *RECORDS[1:50]]}, f)
        index = LocalIndex.build(tmp_path / "dump.sqlite", dump, progress=False)
        assert reads[1:] == ["0.json.gz"] and len(index) == len(RECORDS)
        assert index.lookup(RECORDS[0]["DOI"])["title"] == ["A corrected title"]
        assert index.search("A corrected title", 1)[0]["DOI"] == RECORDS[0]["DOI"]
    finally:
        monkey.undo()


def test_crossref_relevance_normalised_by_length_filters_weak_candidates(crossref, tmp_path):
    row = row_for(rec("10.1038/323533a0"), "physics")
    be = backend_for(crossref, tmp_path)
    assert match(row, be).status == "matched"
    score = be.search(row["ref_raw"], 1)[0]["score"]
    strict = default_params("match", min_relevance=2 * score / len(row["ref_raw"]))
    m = match(row, be, strict)
    assert (m.status, m.doi) == ("not_found", "") and "below relevance" in m.note


def test_an_index_of_another_format_is_rebuilt_and_any_record_file_name_is_read(tmp_path):
    (tmp_path / "records.ndjson").write_text("\n".join(json.dumps(r) for r in RECORDS))  # lines, whatever the name
    index = LocalIndex.build(tmp_path / "i.sqlite", tmp_path / "records.ndjson", progress=False)
    assert len(index) == len(RECORDS)
    db = sqlite3.connect(tmp_path / "i.sqlite")
    db.execute("UPDATE meta SET value = 'older' WHERE key = 'format'")
    db.commit()
    db.close()
    size = sum(p.stat().st_size for p in tmp_path.glob("i.sqlite*"))
    reopened = LocalIndex(tmp_path / "i.sqlite")
    assert len(reopened) == 0  # not mixed with what an older version wrote
    assert sum(p.stat().st_size for p in tmp_path.glob("i.sqlite*")) < size / 2  # nor kept at its size
    assert len(LocalIndex.build(tmp_path / "i.sqlite", tmp_path / "records.ndjson", progress=False)) == len(RECORDS)


def test_a_printed_arxiv_id_gives_the_published_version_when_asked_and_found(tmp_path):
    preprint = rec("10.48550/arXiv.2106.09685")
    published = dict(preprint, DOI="10.5555/iclr.2022.09685", type="proceedings-article",
                     **{"container-title": ["International Conference on Learning Representations"]})
    row = row_for(preprint, "vancouver")
    assert row["ref_arxiv"] and "10.48550" not in row["ref_raw"]  # the arXiv id is printed, not a DOI
    with CrossrefServer([published]) as srv:
        be = backend_for(srv, tmp_path)
        default = match(row, be)
        assert (default.method, default.doi) == ("arxiv_id", preprint["DOI"])
        m = match(row, be, default_params("match", prefer_published=True))
        assert (m.status, m.method, m.doi) == ("matched", "published_version", published["DOI"])
        assert "published version of arXiv:2106.09685" in m.note
    with CrossrefServer([r for r in JOURNAL if r["DOI"] != published["DOI"]]) as srv:  # none published
        m = match(row, backend_for(srv, tmp_path / "none"), default_params("match", prefer_published=True))
        assert (m.method, m.doi) == ("arxiv_id", preprint["DOI"])


def test_a_work_of_1758_keeps_its_year_from_parse_to_match(tmp_path):
    """Old works are cited too (taxonomy): the year parse reads is one match compares."""
    raw = "Linnaeus C. 1758. Systema naturae per regna tria naturae. Holmiae: Laurentius Salvius."
    (tmp_path / "p.xml").write_text(
        "<article><body><sec><title>Introduction</title><p>Binomial names for every species were fixed "
        "in the tenth edition [<xref ref-type='bibr' rid='ref1'>1</xref>].</p></sec></body>"
        f"<back><ref-list><ref id='ref1'><mixed-citation>[1] {raw}</mixed-citation></ref></ref-list></back></article>")
    rows, warnings = parse_file(tmp_path / "p.xml", "p", 0)
    assert not warnings and rows and rows[0]["ref_year"] == "1758"
    systema = {"DOI": "10.5962/bhl.title.542", "title": ["Systema naturae per regna tria naturae"],
               "author": [{"family": "Linnaeus", "given": "Carl", "sequence": "first"}],
               "issued": {"date-parts": [[1758]]}, "type": "book"}
    later = systema | {"DOI": "10.5555/systema.1767", "issued": {"date-parts": [[1767]]}}  # another edition
    index = LocalIndex.from_records(tmp_path / "old.sqlite", [systema, later])
    references, _, _ = match_citations(pd.DataFrame(rows), index, PARAMS, progress=False)
    assert references.loc[0, ["match_status", "doi", "match_year"]].tolist() == ["matched", "10.5962/bhl.title.542", "1758"]


# --- record files as they come: malformed records, broken archives, files that change ------------------

MALFORMED = {
    "author a string": {"author": "Smith"},
    "author holding null": {"author": [None]},
    "a year that is not a number": {"issued": {"date-parts": [["abc"]]}},
    "a nested title": {"title": [["nested"]]},
}


@pytest.mark.parametrize("field", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_record_is_skipped_with_its_file_and_line(tmp_path, caplog, field):
    bad = dict(RECORDS[0], DOI="10.9999/bad", **field)
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [*RECORDS[:5], bad, *RECORDS[5:10]]) + "\n")
    index = LocalIndex.build(tmp_path / "i.sqlite", path, progress=False)
    assert len(index) == 10 and index.lookup("10.9999/bad") is None
    assert match(row_for(RECORDS[0], "apa"), index).doi == RECORDS[0]["DOI"]
    assert f"{path}:6: skipped, malformed record '10.9999/bad': Expected" in caplog.text
    document = tmp_path / "items.json"
    document.write_text(json.dumps({"items": [RECORDS[0], bad]}))
    assert [r["DOI"] for r in load_records(document)] == [RECORDS[0]["DOI"]]
    assert f"{document}: item 2: skipped, malformed record '10.9999/bad'" in caplog.text


def test_a_broken_archive_is_named_with_what_is_wrong(tmp_path):
    lines = "\n".join(json.dumps(r) for r in RECORDS).encode()
    (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress(lines)[:500])
    (tmp_path / "plain.json.gz").write_text(json.dumps({"items": RECORDS[:3]}))
    for name, why in [("cut.jsonl.gz", "the gzip archive is truncated or corrupt"),
                      ("plain.json.gz", "not a gzip archive although named .gz (it starts with b'{\"items\"")]:
        with pytest.raises(UnreadableRecordFile, match=re.escape(f"{tmp_path / name}: {why}")):
            load_records(tmp_path / name)
    (tmp_path / "good.jsonl").write_text(lines.decode())
    index = LocalIndex.build(tmp_path / "i.sqlite", tmp_path, progress=False)
    assert len(index) == len(RECORDS)  # the readable file is indexed, the others reported
    assert sorted(Path(p).name for p in index.unreadable) == ["cut.jsonl.gz", "plain.json.gz"]


def test_the_stage_fails_when_no_record_file_can_be_read_and_says_why(tmp_path):
    _citations_csv(tmp_path / "in.csv")
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "0.json.gz").write_text(json.dumps({"items": RECORDS}))
    (dump / "1.jsonl.gz").write_bytes(gzip.compress(b"\n".join(json.dumps(r).encode() for r in RECORDS))[:300])
    proc = _run_stage(tmp_path, {"backend": "local", "records": str(dump)})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{dump} holds no Crossref records with a DOI (2 file(s) could not be read:" in proc.stderr
    assert f"{dump / '0.json.gz'}: not a gzip archive" in proc.stderr
    assert f"{dump / '1.jsonl.gz'}: the gzip archive is truncated" in proc.stderr
    assert not (tmp_path / "out/references.csv").exists()


def _write_lines(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    os.utime(path, ns=(time.time_ns(), time.time_ns()))  # a new mtime even within the file system's tick


def test_records_removed_from_a_file_leave_the_index(tmp_path, caplog):
    path = tmp_path / "records.jsonl"
    _write_lines(path, RECORDS)
    index = LocalIndex.build(tmp_path / "i.sqlite", path, progress=False)
    assert sum(match(row_for(r, "apa"), index).status == "matched" for r in REAL) == len(REAL)
    kept = RECORDS[:10]
    _write_lines(path, kept)
    caplog.set_level("INFO", logger="citetune.matching.local")
    index = LocalIndex.build(tmp_path / "i.sqlite", path, progress=False)
    assert len(index) == 10 and index.lookup(RECORDS[20]["DOI"]) is None
    assert f"0 record file(s) added, 1 changed, 0 removed; {len(RECORDS)} records forgotten, 10 read; " \
           f"{len(RECORDS)} -> 10 records" in caplog.text
    gone = [r for r in REAL if r not in kept]
    assert not [r for r in gone if match(row_for(r, "apa"), index).status == "matched"]
    assert gone[0]["DOI"] not in {c["DOI"] for c in index.search(gone[0]["title"][0], 5)}
    # The words of forgotten records no longer count: the index equals one built from the ten alone.
    fresh = LocalIndex.build(tmp_path / "fresh.sqlite", path, progress=False)
    terms = "SELECT term, df FROM terms WHERE df > 0 ORDER BY term"
    assert index._db().execute(terms).fetchall() == fresh._db().execute(terms).fetchall()


def test_a_file_removed_from_a_folder_takes_only_its_own_works_away(tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    _write_lines(dump / "a.jsonl", RECORDS[:60])
    _write_lines(dump / "b.jsonl", RECORDS[50:])  # ten works in both: b's versions replace a's
    index = LocalIndex.build(tmp_path / "i.sqlite", dump, progress=False)
    assert len(index) == len(RECORDS)
    (dump / "b.jsonl").unlink()
    index = LocalIndex.build(tmp_path / "i.sqlite", dump, progress=False)
    assert len(index) == 60 and index.lookup(RECORDS[55]["DOI"]) is not None  # a holds it too
    assert index.lookup(RECORDS[60]["DOI"]) is None
    _write_lines(dump / "b.jsonl", RECORDS[50:])
    (dump / "a.jsonl").unlink()
    index = LocalIndex.build(tmp_path / "i.sqlite", dump, progress=False)
    assert len(index) == len(RECORDS) - 50 and index.lookup(RECORDS[0]["DOI"]) is None


def test_record_files_of_the_same_name_in_two_folders_have_an_index_each(tmp_path):
    for folder, records in (("one", RECORDS[:10]), ("two", RECORDS[10:30])):
        (tmp_path / folder).mkdir()
        _write_lines(tmp_path / folder / "crossref.jsonl", records)
    paths = {folder: local_module.default_index_path(tmp_path / folder / "crossref.jsonl", tmp_path / "index")
             for folder in ("one", "two")}
    assert paths["one"] != paths["two"] and paths["one"].name.startswith("crossref.jsonl-")
    for folder, n in (("one", 10), ("two", 20), ("one", 10)):
        params = default_params("match", records=str(tmp_path / folder / "crossref.jsonl"))
        assert len(make_backend(params, index_dir=tmp_path / "index")) == n


def test_the_stage_says_its_citations_table_is_an_empty_file(tmp_path):
    (tmp_path / "in.csv").write_bytes(b"")
    proc = _run_stage(tmp_path, {"backend": "local", "records": str(SAMPLE)})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{tmp_path / 'in.csv'} is empty (0 bytes), not a table with a header row" in proc.stderr


def _contents(index: LocalIndex) -> tuple:
    """What an index holds, whatever order it was built in: its records, its word counts, and for each
    word the DOIs the full-text index finds by it (a row it failed to forget shows as a DOI-less id)."""
    db = index._db()
    records = sorted(db.execute("SELECT doi, record FROM works"))
    terms = db.execute("SELECT term, df FROM terms WHERE df > 0 ORDER BY term").fetchall()
    doi_of = dict(db.execute("SELECT id, doi FROM works"))
    found = {t: sorted(str(doi_of.get(i, i)) for (i,) in db.execute("SELECT rowid FROM works_fts WHERE works_fts "
                                                                     "MATCH ?", (f'"{t}"',)))
             for t, _ in terms}
    return records, terms, found


def test_a_work_in_two_files_is_the_later_files_version_however_the_index_grew(tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    twice = {"DOI": "10.5555/twice", "type": "journal-article", "issued": {"date-parts": [[2020]]},
             "author": [{"family": "Doe", "given": "Jane", "sequence": "first"}]}
    in_a, in_b = dict(twice, title=["Version kept in alpha"]), dict(twice, title=["Version kept in beta"])
    a, b = [*RECORDS[:30], in_a], [*RECORDS[30:60], in_b]

    def build_both() -> LocalIndex:
        for name, records in (("a.jsonl", a), ("b.jsonl", b)):  # only a file that changed is rewritten
            text = "".join(json.dumps(r) + "\n" for r in records)
            if not (dump / name).exists() or (dump / name).read_text() != text:
                _write_lines(dump / name, records)
        index = LocalIndex.build(tmp_path / "i.sqlite", dump, progress=False)
        for p in tmp_path.glob("fresh.sqlite*"):
            p.unlink()
        assert _contents(index) == _contents(LocalIndex.build(tmp_path / "fresh.sqlite", dump, progress=False))
        return index

    assert build_both().lookup(twice["DOI"])["title"] == in_b["title"]  # b.jsonl comes after a.jsonl
    a.append(RECORDS[60])  # an unrelated record: a is read again, b's version stays
    assert build_both().lookup(twice["DOI"])["title"] == in_b["title"]
    b.append(RECORDS[61])
    assert build_both().lookup(twice["DOI"])["title"] == in_b["title"]
    b.remove(in_b)  # only a holds it now
    index = build_both()
    assert index.lookup(twice["DOI"])["title"] == in_a["title"]
    assert index.search("Version kept in alpha Doe 2020", 1)[0]["DOI"] == twice["DOI"]
    b.append(in_b)
    assert build_both().lookup(twice["DOI"])["title"] == in_b["title"]
    a.remove(in_a)
    assert build_both().lookup(twice["DOI"])["title"] == in_b["title"]


def test_ids_of_forgotten_works_are_never_given_again(tmp_path):
    """A full-text entry some other version failed to forget can never point at a later work."""
    path = tmp_path / "records.jsonl"
    _write_lines(path, RECORDS[:20])
    index = LocalIndex.build(tmp_path / "i.sqlite", path, progress=False)
    used = index._db().execute("SELECT MAX(id) FROM works").fetchone()[0]
    _write_lines(path, RECORDS[:5])
    index = LocalIndex.build(tmp_path / "i.sqlite", path, progress=False)
    assert index._db().execute("SELECT MIN(id) FROM works").fetchone()[0] > used


def test_the_index_format_follows_the_code_that_makes_its_words(tmp_path):
    """The words a row is forgotten with are recomputed: any change to the code that makes them
    (or to the Unicode tables it folds with) makes another format, so the index is rebuilt."""
    assert {p.name for p in local_module.TOKEN_SOURCES} == {"words.py", "records.py", "local.py"}
    sources = [tmp_path / "one.py", tmp_path / "two.py"]
    for p in sources:
        p.write_text("x = 1\n")
    before = local_module.code_format(sources)
    assert local_module.code_format(sources) == before
    sources[1].write_text("x = 2\n")
    assert local_module.code_format(sources) != before
    assert local_module.INDEX_FORMAT == local_module.code_format(local_module.TOKEN_SOURCES)


def test_index_files_this_version_never_reads_are_removed_and_others_kept(tmp_path, caplog):
    folder = tmp_path / "index"
    _write_lines(tmp_path / "crossref.jsonl", RECORDS[:10])
    _write_lines(tmp_path / "other.jsonl", RECORDS[10:20])
    other = local_module.default_index_path(tmp_path / "other.jsonl", folder)
    LocalIndex.build(other, tmp_path / "other.jsonl", progress=False)  # match.records may switch back to it
    old_named, old_format = folder / "crossref.jsonl.sqlite", folder / "gone.jsonl-0123456789ab.sqlite"
    for path in (old_named, old_format):
        LocalIndex.build(path, tmp_path / "crossref.jsonl", progress=False)._db().close()
        db = sqlite3.connect(path)
        db.execute("UPDATE meta SET value = '4' WHERE key = 'format'")
        db.commit()
        db.close()
    (folder / "notes.sqlite").write_text("not a database")
    sqlite3.connect(folder / "mine.sqlite").execute("CREATE TABLE t (x)").connection.close()
    (folder / "notes.txt").write_text("kept")
    caplog.set_level("INFO", logger="citetune.matching.local")
    index = make_backend(default_params("match", records=str(tmp_path / "crossref.jsonl")), index_dir=folder)
    assert len(index) == 10
    kept = sorted(p.name for p in folder.iterdir() if not p.name.endswith(("-wal", "-shm")))
    assert kept == sorted([other.name, index.db_path.name, "notes.sqlite", "mine.sqlite", "notes.txt"])
    assert f"{old_named} removed: an index of an older naming" in caplog.text
    assert f"{old_format} removed: an index of an older format" in caplog.text
    assert len(LocalIndex(other)) == 10
