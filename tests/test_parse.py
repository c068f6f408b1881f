"""parse: JATS -> citation rows, on JATS written exactly as CERMINE writes it and on edge cases."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from citetune.columns import CITATION_COLUMNS
from citetune.io import read_csv
from citetune.parse import parse_dir, parse_file
from citetune.text import clean_text, remove_markers, split_sentences, tidy_spacing

ROOT = Path(__file__).resolve().parents[1]
CERMINE_STYLE = ROOT / "tests/fixtures/extract/cermine_style.cermxml"


def by_sentence(rows):
    out = {}
    for r in rows:
        out.setdefault(r["sentence"], []).append(r)
    return out


@pytest.fixture(scope="module")
def cermine_rows():
    rows, warnings = parse_file(CERMINE_STYLE, "p1")
    assert warnings == []
    return rows


def test_pretty_printed_cermine_jats_gives_clean_sentences_markers_and_contexts(cermine_rows):
    sentences = by_sentence(cermine_rows)
    first = sentences["Attention replaced recurrence in transformers [1]."]  # "trans-\nformers" joined
    assert [(r["marker"], r["ref_id"], r["context"]) for r in first] == [
        ("[1]", "ref1", "Attention replaced recurrence in transformers.")]
    # No split after "e.g." or "et al.", nor in "3.5"; a range and a list in one sentence.
    long = ("Several methods train only a few parameters [4–6], e.g. adapters, and reach 3.5 points more "
            "than Smith et al. on average [2, 5].")
    rows = sentences[long]
    assert [(r["marker"], r["ref_id"]) for r in rows] == [("[4–6]", "ref4"), ("[4–6]", "ref5"), ("[4–6]", "ref6"),
                                                         ("[2, 5]", "ref2")]  # ref5 once per sentence
    assert {r["sentence_id"] for r in rows} == {rows[0]["sentence_id"]}
    assert rows[0]["context"] == ("Several methods train only a few parameters, e.g. adapters, and reach 3.5 points "
                                  "more than Smith et al. on average.")
    assert all(r["section"] == "Introduction" for r in rows)


def test_nested_sections_bare_index_rids_and_ranges_with_hyphens(cermine_rows):
    rows = [r for r in cermine_rows if r["section"] == "Low-rank updates"]  # "2.1. Low-rank updates", innermost sec
    assert [(r["marker"], r["ref_id"]) for r in rows] == [("[7]", "ref7"), ("[3, 7-9]", "ref3"), ("[3, 7-9]", "ref8"),
                                                         ("[3, 7-9]", "ref9")]
    assert rows[0]["context"] == "Low-rank updates were introduced by Hu et al. and extended to quantized models."


def test_a_citation_printed_after_the_full_stop_stays_with_its_sentence(cermine_rows):
    row = next(r for r in cermine_rows if r["marker"] == "2")
    assert row["sentence"] == "As shown in Fig. 2 and Eq. 3, scaling helps. 2"
    assert row["context"] == "As shown in Fig. 2 and Eq. 3, scaling helps."
    assert not any("cites nothing" in r["sentence"] for r in cermine_rows)
    assert not any("Abstracts" in r["sentence"] for r in cermine_rows)  # front matter is not body text


def test_reference_fields_from_markup_and_printed_identifiers(cermine_rows):
    refs = {r["ref_id"]: r for r in cermine_rows}
    one = refs["ref1"]
    assert (one["ref_label"], one["ref_authors"], one["ref_title"], one["ref_year"], one["ref_arxiv"]) == (
        "1", "Vaswani;Shazeer;Parmar", "Attention is all you need", "2017", "1706.03762")
    assert one["ref_raw"] == "A. Vaswani, N. Shazeer and N. Parmar, Attention is all you need, arXiv:1706.03762 (2017)."
    two = refs["ref2"]
    assert (two["ref_authors"], two["ref_year"]) == ("Higgins;Thompson", "2003")
    assert two["ref_doi"] == "10.1136/bmj.327.7414.557"  # printed but not marked up, broken after the slash
    three = refs["ref3"]
    assert (three["ref_doi"], three["ref_arxiv"], three["ref_year"]) == (
        "10.48550/arXiv.2305.14314", "2305.14314", "2023")
    assert refs["ref5"]["ref_year"] == "2021" and refs["ref5"]["ref_authors"] == ""  # nothing guessed
    assert refs["ref9"]["ref_year"] == "2022"  # two years printed, none marked: the first, as match compares it


def test_parse_dir_writes_the_column_contract_and_survives_bad_files(tmp_path):
    xml = tmp_path / "xml"
    xml.mkdir()
    (xml / "good.xml").write_bytes(CERMINE_STYLE.read_bytes())
    (xml / "broken.xml").write_text("<article><body><sec><p>unclosed")
    (xml / "nobody.xml").write_text("<article><front/><back><ref-list><ref id='ref1'><mixed-citation>[1] X. 2020."
                                    "</mixed-citation></ref></ref-list></back></article>")
    (xml / "norefs.xml").write_text("<article><body><sec><title>Intro</title><p>Text [1].</p></sec></body></article>")
    (xml / "report.jsonl").write_text('{"paper_id": "good"}\n')
    out = tmp_path / "csv"
    (out / "stale").mkdir(parents=True)
    report = {r["paper_id"]: r for r in parse_dir(xml, out, min_sentence_chars=20)}
    assert set(report) == {"good", "broken", "nobody", "norefs"}
    assert sorted(p.name for p in out.iterdir()) == ["broken.csv", "good.csv", "nobody.csv", "norefs.csv",
                                                     "report.jsonl"]  # rewritten whole
    good = read_csv(out / "good.csv")
    assert list(good.columns) == CITATION_COLUMNS and len(good) == 10
    assert "A short one [3]." not in set(good["sentence"])  # shorter than min_sentence_chars
    for name, why in [("broken", "unreadable JATS"), ("nobody", "no body text"), ("norefs", "no reference list")]:
        df = read_csv(out / f"{name}.csv")
        assert list(df.columns) == CITATION_COLUMNS and df.empty
        assert any(why in w for w in report[name]["warnings"])
    lines = [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()]
    assert {r["paper_id"] for r in lines} == set(report)


def test_external_entities_and_dtds_are_never_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    (tmp_path / "x.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE article [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        "<article><body><sec><title>Intro &xxe;</title><p>Leaked &xxe; here, cited [<xref ref-type='bibr' "
        "rid='ref1'>1</xref>].</p></sec></body><back><ref-list><ref id='ref1'><mixed-citation>[1] A. B, Some "
        "title, J. 1, 2 (2020).</mixed-citation></ref></ref-list></back></article>")
    rows, _ = parse_file(tmp_path / "x.xml", "x")
    assert rows and not any("TOP-SECRET" in v for r in rows for v in r.values())


def test_parse_stage_command_line(tmp_path):
    xml = tmp_path / "xml"
    xml.mkdir()
    (xml / "p1.xml").write_bytes(CERMINE_STYLE.read_bytes())
    r = subprocess.run([sys.executable, "-m", "stages.parse", "--xml-dir", str(xml), "--out-dir",
                        str(tmp_path / "csv")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert len(read_csv(tmp_path / "csv/p1.csv")) == 10  # params.yaml: parse.min_sentence_chars 20
    r = subprocess.run([sys.executable, "-m", "stages.parse", "--xml-dir", str(tmp_path / "none"), "--out-dir",
                        str(tmp_path / "csv2")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1 and "run the extract stage first" in r.stderr


# --- text helpers shared with merge ---------------------------------------------------------------

@pytest.mark.parametrize("raw, clean", [
    ("trans- formers", "transformers"),
    ("trans-\n  formers are", "transformers are"),
    ("self- attention", "self-attention"),
    ("fine-\ntuning", "fine-tuning"),
    ("in- formation and low- er cost", "information and lower cost"),
    ("first- and second-order", "first- and second-order"),
    ("GPT- 4 and LLM- based", "GPT- 4 and LLM-based"),
    ("ﬁne  tuning\u00a0of\tmodels ", "fine tuning of models"),
    ("state-of-the-art", "state-of-the-art"),
])
def test_normalize_text(raw, clean):
    assert clean_text(raw) == clean
    assert clean_text(clean) == clean  # idempotent


@pytest.mark.parametrize("sentence, context", [
    ("Low-rank adaptation [7] trains few parameters.", "Low-rank adaptation trains few parameters."),
    ("Methods train few parameters [4–6], as shown [2, 5].", "Methods train few parameters, as shown."),
    ("[3] showed this first.", "showed this first."),
    ("Both were studied [3], [4].", "Both were studied."),
    ("Ranges like [3,7–9] and [1; 4] go too.", "Ranges like and go too."),
    ("Quantization helps (Dettmers et al., 2023; Frantar and Alistarh, 2022).", "Quantization helps."),
    ("The model (released in 2019) works (Hu et al. 2021).", "The model (released in 2019) works."),
])
def test_remove_markers(sentence, context):
    assert remove_markers(sentence) == context
    assert "  " not in context and " ." not in context


def test_split_sentences_keeps_abbreviations_initials_decimals_and_markers_together():
    text = ("Hu et al. [7] proposed it, cf. Fig. 2 and Eq. 3. It gains 3.5 points, i.e. a lot, vs. baselines. "
            "J. Smith agreed [2, 5]. Next one.[3] And e.g. this.")
    groups = [(m, m + len(g)) for g in ("[7]", "[2, 5]", "[3]") for m in [text.index(g)]]
    spans = split_sentences(text, groups)
    assert [text[a:b] for a, b in spans] == [
        "Hu et al. [7] proposed it, cf. Fig. 2 and Eq. 3.",
        "It gains 3.5 points, i.e. a lot, vs. baselines.",
        "J. Smith agreed [2, 5].",
        "Next one.[3]",
        "And e.g. this.",
    ]


def test_tidy_spacing_undoes_pretty_printing():
    assert tidy_spacing("models [\n  1\n ] , and ( see\n[ 2 ] ) .") == "models [1], and (see [2])."
    assert tidy_spacing("https://doi.org/ 10.1/x, arXiv: 1706.03762") == "https://doi.org/10.1/x, arXiv:1706.03762"


def test_line_end_hyphens_follow_the_papers_own_spelling(tmp_path):
    (tmp_path / "p.xml").write_text(
        "<article><body><sec><title>1 Intro</title><p>We study pre-\ntraining and self-\nattention of trans-\n"
        "formers [<xref ref-type='bibr' rid='ref1'>1</xref>].</p><p>Pretraining with self-attention is common."
        "</p></sec></body><back><ref-list><ref id='ref1'><mixed-citation>[1] A. Bee, J. Phys. 1, 2 (2020)."
        "</mixed-citation></ref></ref-list></back></article>")
    rows, _ = parse_file(tmp_path / "p.xml", "p")
    assert [r["sentence"] for r in rows] == ["We study pretraining and self-attention of transformers [1]."]
    assert rows[0]["section"] == "Intro"


def test_a_sentence_may_begin_with_a_surnames_particle():
    text = ("Nothing was known before. di Stefano (12) showed it in children. van der Berg et al. found the same. "
            "We follow the de facto standard. d’Aspremont (3) disagrees.")
    assert [text[a:b] for a, b in split_sentences(text, [])] == [
        "Nothing was known before.", "di Stefano (12) showed it in children.", "van der Berg et al. found the same.",
        "We follow the de facto standard.", "d’Aspremont (3) disagrees."]


def test_the_stage_fails_when_no_jats_file_can_be_read_and_keeps_the_last_outputs(tmp_path):
    xml, out = tmp_path / "xml", tmp_path / "csv"
    xml.mkdir()
    (xml / "p1.xml").write_bytes(CERMINE_STYLE.read_bytes())
    cmd = [sys.executable, "-m", "stages.parse", "--xml-dir", str(xml), "--out-dir", str(out)]
    assert subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True).returncode == 0
    (xml / "p1.xml").write_text("<article><body><sec><p>unclosed")
    (xml / "p2.xml").write_bytes(b"\x00\x01 not xml")
    (xml / "p3.xml").write_text("<html><body/></html>")
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"no JATS file in {xml} could be read:\n  p1: unreadable JATS: not well-formed XML" in r.stderr
    assert "\n  p2: unreadable JATS: " in r.stderr and "\n  p3: unreadable JATS: root element is <html>" in r.stderr
    assert len(read_csv(out / "p1.csv")) == 10  # the last good run's output is left as it was
    (xml / "p3.xml").write_text("<article><body><sec><title>Intro</title><p>Text [1].</p></sec></body></article>")
    assert subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True).returncode == 0  # one readable: a warning
