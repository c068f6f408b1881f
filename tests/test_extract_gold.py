"""The built-in engine and parse on papers typeset with LaTeX (bench/gold): every layout and citation
style there, scored against the hand-checked gold references and citing sentences; and on real papers
typeset elsewhere (bench/gold_real), scored against their hand-made gold."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from citetune import jats
from citetune.engines import builtin
from citetune.parse import citation_rows, read_references
from citetune.testing.gold_scoring import f1, score_paper

GOLD = Path(__file__).resolve().parents[1] / "bench" / "gold"
REAL = GOLD.with_name("gold_real")
PAPERS = sorted(p.stem for p in (GOLD / "pdf").glob("*.pdf"))


def extract_set(folder: Path) -> dict[str, tuple[dict, bytes, list[dict]]]:
    """paper_id -> (gold, JATS bytes, citation rows) for every PDF of a gold set."""
    out = {}
    for pdf in sorted((folder / "pdf").glob("*.pdf")):
        xml = jats.to_bytes(builtin.extract(pdf))
        rows, _ = citation_rows(jats.parse_jats(xml), pdf.stem)
        out[pdf.stem] = (json.loads((folder / f"{pdf.stem}.json").read_text(encoding="utf-8")), xml, rows)
    return out


@pytest.fixture(scope="module")
def extracted() -> dict[str, tuple[dict, bytes, list[dict]]]:
    return extract_set(GOLD)


def totals(extracted, style: str | None = None) -> dict[str, int]:
    total: dict[str, int] = defaultdict(int)
    for gold, xml, rows in extracted.values():
        if style in (None, gold["citation_style"]):
            for k, v in score_paper(gold, xml, rows)[0].items():
                total[k] += v
    return total


def refs_of(extracted, paper_id):
    return list(read_references(jats.parse_jats(extracted[paper_id][1])).values())


def test_the_gold_set_covers_every_layout_and_citation_style():
    golds = [json.loads((GOLD / f"{p}.json").read_text()) for p in PAPERS]
    assert {g["citation_style"] for g in golds} == {"numeric-brackets", "numeric-parens", "superscript", "author-year"}
    assert {g["columns"] for g in golds} == {1, 2}
    assert len(golds) >= 15


@pytest.mark.parametrize("style", ["numeric-brackets", "numeric-parens", "superscript", "author-year"])
def test_references_fields_and_citing_sentences_per_citation_style(extracted, style):
    total = totals(extracted, style)
    _, _, entry_f1 = f1(total)
    assert entry_f1 >= 0.97
    assert total["exact_count"] == total["papers"]  # the number of entries is right on every paper
    assert total["author_year_right"] >= 0.97 * total["matched"]
    assert total["sentences_right"] >= 0.9 * total["gold_sentences"]


def test_superscript_citations_are_linked_and_footnote_marks_and_exponents_are_not(extracted):
    gold, xml, rows = extracted["p14_nature_super"]
    markers = {r["marker"] for r in rows}
    assert any(re.fullmatch(r"\d+[–-]\d+", m) for m in markers)  # a range printed as superscript "1–3"
    assert any(re.fullmatch(r"\d+(?:,\d+)+", m) for m in markers)  # a list "2,5"
    text = xml.decode()
    # "The full protocol was approved by the local review board.⁴" — footnote 4, not reference 4:
    # the mark is dropped, not linked, not left in the text.
    assert "local review board.</p>" in text or "local review board. " in text
    assert not [r for r in rows if "review board" in r["sentence"]]
    # Exponents stay text: "of order 10−3" is printed and not a citation of reference 3.
    exponents = [r for r in rows if "10−3" in r["sentence"]]
    assert "of order 10−3" in text and exponents  # those sentences cite other works, with their markers
    assert not any(r["marker"] == "3" for r in exponents)


def test_parenthesised_numbers_are_citations_but_equations_and_statistics_are_not(extracted):
    gold, xml, rows = extracted["p11_round_numbers"]
    markers = {r["marker"] for r in rows}
    assert markers and all(m.startswith("(") and m.endswith(")") for m in markers)
    assert not any(r["marker"] == "(3)" and "Eq. (3)" in r["sentence"] for r in rows)
    # Numbers in brackets that are statistics are not citations: "(n = 120)", "(95% CI 4.9–19.1)".
    stats = [r for r in rows if "(n = " in r["sentence"] or "CI " in r["sentence"]]
    assert stats and not any("n =" in r["marker"] or "CI" in r["marker"] for r in stats)
    assert {r["marker"] for r in stats} <= {m for m in markers if re.fullmatch(r"\([\d,–\s]+\)", m)}
    assert [r.label for r in refs_of(extracted, "p11_round_numbers")][:3] == ["1", "2", "3"]  # "(1)" labels


def test_author_year_citations_resolve_by_surnames_year_and_letter(extracted):
    gold, xml, rows = extracted["p01_natbib_plainnat"]
    by_marker = defaultdict(set)
    for r in rows:
        by_marker[r["marker"]].add(r["ref_raw"])
    narrative = [m for m in by_marker if re.fullmatch(r"\((?:19|20)\d\d[a-z]?\)", m)]
    assert narrative  # "Smith et al. (2019)": the year in brackets is the marker, the names stay in the text
    # Two works of one first author and year, told apart by the letter: "Åberg et al., 2008b".
    lettered = [r for r in rows if re.search(r"(?:19|20)\d\d[ab]\b", r["ref_raw"])]
    assert lettered
    for r in lettered:
        stamp = re.search(r"(?:19|20)\d\d[ab]\b", r["ref_raw"]).group(0)
        assert stamp in r["marker"] or stamp[:-1] + "a," + stamp[-1] in r["marker"], (stamp, r["marker"])
    assert not any("(" in r["context"] and re.search(r"\((?:19|20)\d\d[a-z]?\)", r["context"]) for r in rows)


def test_reference_lists_however_headed_and_labelled(extracted):
    headings = {"p12_amsart": "1.", "p13_apalike": "", "p14_nature_super": "1.", "p15_bare_numbers": "1",
                "p16_short_noheading": "[1]"}
    for paper_id, first_label in headings.items():
        gold, xml, _ = extracted[paper_id]
        refs = refs_of(extracted, paper_id)
        assert len(refs) == len(gold["references"]), paper_id
        raw = jats.parse_jats(xml).find(".//back//mixed-citation")
        assert "".join(raw.itertext()).startswith(first_label), paper_id


def test_accents_ligatures_and_line_end_hyphens_come_out_as_printed(extracted):
    text = "".join(x.decode() for _, x, _ in extracted.values())
    assert "Schölkopf" in text and "Erdős" in text and "Dvořák" in text
    assert not re.search("[¨´˝ˇ˚]", text)  # no accent left as a glyph of its own
    assert "Ben-David" in text and "Ben- David" not in text  # a name hyphenated at a line end
    assert not re.search(r"\b\d+[–-] \d+\b", text)  # nor a page range


def test_real_papers_typeset_by_their_authors():
    """26 papers typeset elsewhere (jss.cls, pinp, amsart, BiocStyle, natbib, knitr, pandoc; most rewritten
    by Ghostscript):
    the entries, their first authors and years, and the citing sentences against the hand-made gold."""
    total = totals(extract_set(REAL))
    assert total["papers"] == 26 and total["gold_entries"] == 194
    _, _, entry_f1 = f1(total)
    assert entry_f1 >= 0.98
    assert total["exact_count"] >= 24
    assert total["author_year_right"] >= 0.80 * total["matched"]
    assert total["sentences_right"] >= 0.88 * total["gold_sentences"]
