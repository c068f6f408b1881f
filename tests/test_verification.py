"""Verifying the DOIs of answers against a real index of Crossref-format records."""

import json
from pathlib import Path

import pytest

from citetune.answers import Cited
from citetune.matching import LocalIndex
from citetune.params import default_params
from citetune.verification import Verifier

ROOT = Path(__file__).resolve().parents[1]
LORA_ARXIV = "10.48550/arxiv.2106.09685"
LORA_TITLE = "LoRA: Low-Rank Adaptation of Large Language Models"
# The journal version of the LoRA preprint, as Crossref would hold it (not in the sample corpus).
PUBLISHED = {"DOI": "10.9999/lora.2022.1", "type": "journal-article", "title": [LORA_TITLE],
             "author": [{"given": "Edward", "family": "Hu", "sequence": "first"}],
             "issued": {"date-parts": [[2022]]}, "container-title": ["Journal of Adaptation"]}
RELATED = {"DOI": "10.9999/related.1", "type": "journal-article", "title": ["A renamed journal version"],
           "author": [{"given": "A", "family": "Nobody", "sequence": "first"}], "issued": {"date-parts": [[2020]]},
           "relation": {"is-version-of": [{"id-type": "doi", "id": "10.5555/ct.2021.2628"}]}}


@pytest.fixture(scope="module")
def verifier(tmp_path_factory):
    records = [json.loads(line) for line in (ROOT / "data/sample/crossref.jsonl").read_text().splitlines()]
    index = LocalIndex.from_records(tmp_path_factory.mktemp("index") / "records.sqlite", records + [PUBLISHED, RELATED])
    return Verifier(index, default_params("match"))


def test_a_gold_doi_with_its_own_title_is_right(verifier):
    v = verifier.verify(Cited(LORA_ARXIV, LORA_TITLE), [LORA_ARXIV])
    assert (v.status, v.title_agrees, v.gold, v.title, v.year) == ("right", True, LORA_ARXIV, LORA_TITLE, 2021)


def test_a_doi_that_names_no_work_is_fabricated_and_a_real_other_work_is_wrong(verifier):
    assert verifier.verify(Cited("10.48550/arxiv.2106.99999", LORA_TITLE), [LORA_ARXIV]).status == "fabricated"
    # A look-alike record of the sample: real, but not the claim's work; its printed title is its own.
    v = verifier.verify(Cited("10.5555/ct.2021.2628", "Retrieval-Augmented Generation for Knowledge-Intensive "
                                                      "Dialogue Tasks"), [LORA_ARXIV])
    assert (v.status, v.title_agrees) == ("wrong", True)


def test_a_title_that_is_not_the_dois_is_mismatched(verifier):
    v = verifier.verify(Cited(LORA_ARXIV, "Attention Is All You Need"), [LORA_ARXIV])
    assert (v.status, v.title_agrees) == ("right", False)
    assert verifier.verify(Cited(LORA_ARXIV, ""), [LORA_ARXIV]).title_agrees is None


def test_the_published_version_of_an_arxiv_gold_work_is_right(verifier):
    v = verifier.verify(Cited(PUBLISHED["DOI"], LORA_TITLE), [LORA_ARXIV])
    assert (v.status, v.gold) == ("right", LORA_ARXIV)
    # ... and the reverse: the preprint of a published gold work.
    assert verifier.verify(Cited(LORA_ARXIV, LORA_TITLE), [PUBLISHED["DOI"]]).status == "right"
    # Two journal DOIs are one work only when a record says so.
    assert verifier.verify(Cited(RELATED["DOI"], ""), ["10.5555/ct.2021.2628"]).status == "right"
    assert verifier.verify(Cited(PUBLISHED["DOI"], LORA_TITLE), ["10.5555/ct.2021.2628"]).status == "wrong"


def test_without_gold_a_real_doi_is_verified(verifier):
    assert verifier.verify(Cited(LORA_ARXIV, LORA_TITLE)).status == "verified"
    assert verifier.verify(Cited("10.1000/nothing", "")).status == "fabricated"
