"""Verifying the DOIs of answers against a real index of Crossref-format records."""

import json
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import stages.ask
import stages.evaluate
from citetune.answer_cache import AnswerCache
from citetune.answers import Cited
from citetune.errors import StageError
from citetune.io import write_jsonl
from citetune.matching import CrossrefBackend, LocalIndex
from citetune.params import default_params, load_params
from citetune.testing.crossref_server import CrossrefServer
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


def test_with_crossref_arxiv_gold_works_stay_right_and_library_works_stand_in(tmp_path):
    """Crossref holds no arXiv DOI: a gold arXiv DOI is right (match verified it), a library work's record
    comes from the library, and an unknown arXiv DOI is unverified, not fabricated."""
    journal = [r for r in (json.loads(line) for line in (ROOT / "data/sample/crossref.jsonl").read_text().splitlines())
               if not r["DOI"].startswith("10.48550/")]
    library = [{"doi": "10.48550/arXiv.2106.09685", "title": LORA_TITLE, "year": 2021},
               {"doi": "10.48550/arXiv.1706.03762", "title": "Attention Is All You Need", "year": 2017}]
    with CrossrefServer(journal) as srv:
        backend = CrossrefBackend(srv.base_url, "tests@example.org", 5, tmp_path / "c.sqlite", backoff_seconds=0.01)
        verifier = Verifier(backend, default_params("match"), library)
        v = verifier.verify(Cited(LORA_ARXIV, "Attention Is All You Need"), [LORA_ARXIV])
        assert (v.status, v.title_agrees) == ("right", False)  # the library's title is the record's
        assert verifier.verify(Cited("10.48550/arxiv.1706.03762", ""), [LORA_ARXIV]).status == "wrong"
        assert verifier.verify(Cited("10.48550/arxiv.9999.00001", ""), [LORA_ARXIV]).status == "unverified"
        assert verifier.verify(Cited("10.48550/arxiv.9999.00001", ""), [LORA_ARXIV]).status == "unverified"
        assert verifier.verify(Cited("10.5555/ct.2021.2628", ""), [LORA_ARXIV]).status == "wrong"
        assert verifier.verify(Cited("10.5555/none.1", ""), [LORA_ARXIV]).status == "fabricated"
        assert srv.hits["work"] == 2  # looked up once each; arXiv DOIs never asked


def test_only_version_relations_make_one_work_and_two_preprints_never_are(tmp_path):
    citing = dict(RELATED, DOI="10.9999/citing.1", relation={"references": [{"id": "10.5555/ct.2021.2628"}]})
    records = [json.loads(line) for line in (ROOT / "data/sample/crossref.jsonl").read_text().splitlines()]
    twin = dict(PUBLISHED, DOI="10.48550/arXiv.2106.99998")  # the same title and author, another preprint
    verifier = Verifier(LocalIndex.from_records(tmp_path / "r.sqlite", records + [citing, twin]),
                        default_params("match"))
    assert verifier.verify(Cited(citing["DOI"], ""), ["10.5555/ct.2021.2628"]).status == "wrong"
    assert verifier.verify(Cited(twin["DOI"].lower(), LORA_TITLE), [LORA_ARXIV]).status == "wrong"


def test_text_glued_after_a_library_doi_is_not_part_of_it(verifier):
    glued = Verifier(verifier.backend, default_params("match"), [{"doi": LORA_ARXIV, "title": LORA_TITLE, "year": 2021}])
    for text in (LORA_ARXIV + "and", LORA_ARXIV + "-", LORA_ARXIV + "(2021)"):
        v = glued.verify(Cited(text, LORA_TITLE), [LORA_ARXIV])
        assert (v.doi, v.status) == (LORA_ARXIV, "right"), text
    # A longer DOI that merely starts with a library one is another DOI: judged as written.
    assert glued.verify(Cited(LORA_ARXIV + "1", ""), [LORA_ARXIV]).status == "fabricated"
    assert glued.unglued("10.5555/ct.2021.2628x") == ""  # not a library DOI


def _journal_records() -> list[dict]:
    records = (json.loads(line) for line in (ROOT / "data/sample/crossref.jsonl").read_text().splitlines())
    return [r for r in records if not r["DOI"].startswith("10.48550/")]


@pytest.fixture
def refusing_crossref(tmp_path):
    """A loopback Crossref that answers one DOI and refuses the next with Retry-After: 86400, and the
    params and inputs of a stage that verifies with it (no model: the stages' scoring is stood in for)."""
    with CrossrefServer(_journal_records()) as srv:
        srv.fail(429, times=None, when="10.5555/none.1", retry_after="86400")
        match = default_params("match", backend="crossref", api_url=srv.base_url, mailto="tests@example.org",
                               backoff_seconds=0.01, max_retry_after_seconds=30)
        sections = {"match": match, **{s: default_params(s) for s in ("evaluate", "train", "qa")}}
        (tmp_path / "params.yaml").write_text(yaml.safe_dump({k: v.model_dump(mode="json") for k, v in sections.items()}))
        write_jsonl(tmp_path / "sft" / "works.jsonl", [{"doi": LORA_ARXIV, "title": LORA_TITLE, "year": 2021}])
        yield srv, tmp_path


def _verify_both(verifier) -> list:
    # A real DOI looked up and cached, then one Crossref refuses: the backend stops, the verdict is 'unverified'.
    return [verifier.verify(Cited(doi, ""), [LORA_ARXIV]) for doi in ("10.5555/ct.2021.2628", "10.5555/none.1")]


def test_evaluate_writes_no_metrics_when_crossref_said_stop_during_verification(refusing_crossref, monkeypatch):
    srv, root = refusing_crossref
    verdicts = []

    def scored(base_dir, adapter_dir, sft_dir, verifier, params, **kw):
        verdicts.extend(_verify_both(verifier))
        return SimpleNamespace(predictions=[{"verdicts": [vars(v) for v in verdicts]}], metrics={"tuned": {}},
                               max_new_tokens=16, plot=list)

    monkeypatch.setattr(stages.evaluate, "evaluate", scored)
    args = Namespace(params=root / "params.yaml", sft_dir=root / "sft", base_dir=root / "base",
                     adapter_dir=root / "adapter", index_dir=root / "index", verify_cache=root / "verify.sqlite",
                     offline=False, judge_cache=root / "judge.sqlite", predictions=root / "predictions.jsonl",
                     metrics=root / "eval.json", plot=root / "eval_plot.json")
    with pytest.raises(StageError, match=r"stopped asking Crossref: it asked for a pause of 86400 s .* "
                                         r"run the stage again later"):
        stages.evaluate.main(args, load_params("evaluate", args.params))
    assert [v.status for v in verdicts] == ["wrong", "unverified"]
    assert not any(p.exists() for p in (args.metrics, args.predictions, args.plot))
    assert len(AnswerCache(args.verify_cache)) == 1  # the look-up that was answered is kept for the rerun
    assert srv.hits["work"] == 2


def test_ask_fails_rather_than_show_unverified_dois_when_crossref_said_stop(refusing_crossref, monkeypatch, capsys):
    _, root = refusing_crossref

    class Answering:
        def __init__(self, base_dir, adapter_dir, sft_dir, verifier, *a, **kw):
            self.verifier = verifier

        def ask(self, claims):
            return [SimpleNamespace(claim=c, works=_verify_both(self.verifier)) for c in claims]

    monkeypatch.setattr(stages.ask, "Assistant", Answering)
    monkeypatch.setattr(stages.ask, "trained_modes", lambda adapter_dir: ["closed_book"])
    monkeypatch.setattr(stages.ask, "adapter_format", lambda adapter_dir: "text")
    args = Namespace(params=root / "params.yaml", claims=["Low-rank adapters make fine-tuning affordable."],
                     file=None, json=root / "answers.jsonl", mode=None, free=False, sft_dir=root / "sft",
                     base_dir=root / "base", adapter_dir=root / "adapter", index_dir=root / "index",
                     verify_cache=root / "ask-verify.sqlite", offline=False)
    with pytest.raises(StageError, match=r"stopped asking Crossref: .* run the stage again later"):
        stages.ask.main(args, load_params("evaluate", args.params))  # ask reads evaluate's section
    assert not args.json.exists()
