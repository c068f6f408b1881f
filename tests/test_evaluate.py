"""The evaluate stage: DOIs pulled out of answers, the scores, and the stage on a tiny trained adapter."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from citetune.answers import (
    ABSTAIN,
    ADAPTER_FORMAT,
    adapter_format,
    format_answer,
    parse_answer,
    work_line,
)
from citetune.errors import StageError
from citetune.evaluation import baseline_answers, evaluate, prediction_row, score
from citetune.generation import Generated
from citetune.io import read_jsonl
from citetune.matching import LocalIndex
from citetune.params import default_params
from citetune.qa import MODES
from citetune.testing.sft_sample import sample_library, sft_records, write_sft
from citetune.verification import Verifier

ROOT = Path(__file__).resolve().parents[1]


def _row(dois, statuses, abstained=False, exact=False, title_agrees=True, abstain_gold=None, malformed=False):
    verdicts = [{"doi": f"10.1000/{i}", "status": s, "title_agrees": title_agrees, "gold": dois[0] if s == "right" else ""}
                for i, s in enumerate(statuses)]
    return {"dois": dois, "verdicts": verdicts, "predicted": [v["doi"] for v in verdicts], "abstained": abstained,
            "truncated": False, "malformed": malformed, "exact": exact,
            "abstain_gold": not dois if abstain_gold is None else abstain_gold}


def test_scores_on_hand_written_rows():
    rows = [
        _row(["10.1/a"], ["right"], exact=True),
        _row(["10.1/a"], ["right", "fabricated"]),       # the right one and an invented one
        _row(["10.1/b"], ["wrong"], title_agrees=False),  # a real other work, printed with another title
        _row(["10.1/c"], [], abstained=True),            # abstained on a supported claim
        _row([], [], abstained=True, exact=True),        # abstained on an unsupported claim: right
        _row([], ["wrong"]),                             # cited a work for an unsupported claim
        # Retrieval showed none of the claim's works: abstaining is what it was taught, not exact.
        _row(["10.1/d"], [], abstained=True, abstain_gold=True),
    ]
    s = score(rows)
    assert (s["n"], s["supported"], s["unsupported"], s["abstain_gold"]) == (7, 5, 2, 3)
    assert s["doi_exact_match"] == pytest.approx(1 / 5)
    assert s["doi_recall"] == pytest.approx(2 / 5)
    assert s["fabricated_rate"] == pytest.approx(1 / 7)  # an abstention is never a fabrication
    assert s["wrong_rate"] == pytest.approx(2 / 7)
    assert s["mismatched_rate"] == pytest.approx(1 / 7)
    assert s["answered_rate"] == pytest.approx(4 / 7)
    assert s["abstention_precision"] == pytest.approx(2 / 3)
    assert s["abstention_recall"] == pytest.approx(2 / 3)
    assert s["malformed_rate"] == 0
    assert score(rows + [_row(["10.1/a"], ["right"], malformed=True)])["malformed_rate"] == pytest.approx(1 / 8)
    assert score([])["doi_exact_match"] is None


@pytest.fixture(scope="module")
def verifier(tmp_path_factory):
    records = [json.loads(line) for line in (ROOT / "data/sample/crossref.jsonl").read_text().splitlines()]
    return Verifier(LocalIndex.from_records(tmp_path_factory.mktemp("index") / "r.sqlite", records),
                    default_params("match"))


def test_rows_verify_each_doi_and_exactness_follows_the_gold(verifier):
    rec = {"id": "x:1", "split": "test", "claim": "c", "dois": ["10.48550/arxiv.2106.09685"]}
    right = "- LoRA: Low-Rank Adaptation of Large Language Models (2021). DOI: 10.48550/arXiv.2106.09685"
    row = prediction_row(rec, Generated(right, True), "tuned", verifier)
    assert row["exact"] and row["verdicts"][0]["status"] == "right" and row["verdicts"][0]["title_agrees"]
    invented = right + "\n- Made Up (2020). DOI: 10.48550/arXiv.2106.00000"
    row = prediction_row(rec, Generated(invented, True), "tuned", verifier)
    assert not row["exact"] and [v["status"] for v in row["verdicts"]] == ["right", "fabricated"]
    # Cut by the budget: the last line is not scored, whatever DOI its cut-off text would name.
    row = prediction_row(rec, Generated(invented[:-3], False), "tuned", verifier)
    assert row["exact"] and row["truncated"] and row["predicted"] == ["10.48550/arxiv.2106.09685"]
    unsupported = rec | {"dois": []}
    assert prediction_row(unsupported, Generated(ABSTAIN, True), "tuned", verifier)["exact"]
    assert not prediction_row(unsupported, Generated(right, True), "tuned", verifier)["exact"]


def test_json_rows_are_exact_only_when_they_follow_the_schema(verifier):
    rec = {"id": "x:1", "split": "test", "claim": "c", "dois": ["10.48550/arxiv.2106.09685"]}
    lora = {"title": "LoRA: Low-Rank Adaptation of Large Language Models", "year": 2021,
            "doi": "10.48550/arXiv.2106.09685"}
    right = format_answer([lora], "json")
    row = prediction_row(rec, Generated(right, True), "tuned", verifier, "json")
    assert row["exact"] and not row["malformed"] and row["verdicts"][0]["title_agrees"]
    # The right work, but not the schema's shape: malformed, never exact; its DOI is still verified.
    loose = '{"works": [{"title": "LoRA", "doi": "10.48550/arXiv.2106.09685"}]}'
    row = prediction_row(rec, Generated(loose, True), "tuned", verifier, "json")
    assert row["malformed"] and not row["exact"] and [v["status"] for v in row["verdicts"]] == ["right"]
    # A text answer read as JSON is malformed too; read as text it is right.
    text = work_line(lora)
    assert prediction_row(rec, Generated(text, True), "tuned", verifier, "json")["malformed"]
    assert prediction_row(rec, Generated(text, True), "tuned", verifier)["exact"]


def test_the_lookup_and_bm25_baselines_answer_from_the_library():
    records = sft_records()
    library = sample_library()
    claims = [(r["claim"], r["dois"]) for r in records if r["split"] == "train" and r["dois"]
              and r["mode"] == "closed_book"]
    test = [r for r in records if r["split"] == "test" and r["mode"] == "closed_book"]
    lines = {work_line(w) for w in library}
    for name in ("lookup", "bm25"):
        answers = baseline_answers(name, test, library, claims)
        assert len(answers) == len(test)
        assert all(set(a.text.splitlines()) <= lines or a.text == ABSTAIN for a in answers)
        hits = sum(set(parse_answer(a.text).dois) == set(r["dois"]) for a, r in zip(answers, test) if r["dois"])
        assert hits >= 0.4 * sum(bool(r["dois"]) for r in test), name  # far from chance among ~40 works
        # In JSON: the same works, schema-valid.
        as_json = [parse_answer(a.text, answer_format="json")
                   for a in baseline_answers(name, test, library, claims, "json")]
        assert not any(p.malformed for p in as_json)
        assert [p.dois for p in as_json] == [parse_answer(a.text).dois for a in answers]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_base, trained_adapter):
    """The session's tiny 4-bit base and adapter (conftest.py), and small SFT splits in both modes."""
    root = tmp_path_factory.mktemp("evaluate")
    records = sft_records(modes=list(MODES))
    keep = {s: {r["id"] for r in records if r["split"] == s} for s in ("train", "validation", "test")}
    keep = {s: sorted(ids)[:n] for (s, ids), n in zip(keep.items(), (8, 2, 6))}
    chosen = [r for r in records if r["id"] in keep[r["split"]]]
    splits = write_sft(root / "sft", chosen)
    return root, splits, tiny_base, trained_adapter["--out-dir"]


def stage_params(root: Path, **evaluate) -> Path:
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump({
        "evaluate": default_params("evaluate", **({"batch_size": 8} | evaluate)).model_dump(mode="json"),
        "train": default_params("train", quantization="4bit").model_dump(mode="json"),
        "match": default_params("match", records=str(ROOT / "data/sample/crossref.jsonl")).model_dump(mode="json"),
    }))
    return params


SYSTEMS = ["lookup", "bm25", "base", "tuned/closed_book", "tuned/closed_book/grounded", "tuned/retrieval",
           "tuned/retrieval/grounded"]


@pytest.mark.slow
def test_evaluate_stage_scores_every_system_with_verified_dois(trained):
    root, splits, base, adapter = trained
    out = {"--predictions": root / "eval" / "predictions.jsonl", "--metrics": root / "metrics" / "eval.json",
           "--plot": root / "metrics" / "eval_plot.json", "--index-dir": root / "index",
           "--verify-cache": root / "cache" / "verify.sqlite", "--judge-cache": root / "cache" / "judge.sqlite"}
    cmd = [sys.executable, "-m", "stages.evaluate", "--params", str(stage_params(root)), "--sft-dir", str(root / "sft"),
           "--base-dir", str(base), "--adapter-dir", str(adapter)] + [str(x) for kv in out.items() for x in kv]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]

    metrics = json.loads(out["--metrics"].read_text())
    assert metrics["max_new_tokens"] > 16
    assert sorted(k for k in metrics if k != "max_new_tokens") == sorted(SYSTEMS)
    preds = read_jsonl(out["--predictions"])
    claims = {split: {r["id"] for r in splits[split]} for split in ("test", "train")}
    library = {work_line(w) for w in read_jsonl(root / "sft" / "works.jsonl")}
    for system in SYSTEMS:
        for split in ("test", "train"):
            mine = [p for p in preds if p["system"] == system and p["split"] == split]
            m = metrics[system][split]
            assert {p["id"] for p in mine} == claims[split] and m["n"] == len(mine)
            supported = [p for p in mine if p["dois"]]
            assert m["doi_exact_match"] == pytest.approx(sum(p["exact"] for p in supported) / len(supported))
            for p in mine:
                cited = parse_answer(p["answer"], not p["truncated"]).dois
                assert len(p["predicted"]) == len(cited) and all(c.startswith(d) for c, d in zip(cited, p["predicted"]))
                assert [v["doi"] for v in p["verdicts"]] == p["predicted"]
            if system in ("lookup", "bm25") or system.endswith("grounded"):
                # Whole library lines or the abstention: every DOI real, every title its DOI's.
                assert m["fabricated_rate"] == 0 and m["mismatched_rate"] == 0
                assert all(set(p["answer"].splitlines()) <= library or p["answer"] == ABSTAIN for p in mine)
    for p in preds:
        if p["system"] == "tuned/retrieval/grounded" and not p["abstained"]:
            shown = next(r for r in splits[p["split"]] if r["id"] == p["id"] and r["mode"] == "retrieval")
            assert set(p["predicted"]) <= set(shown["candidates"])  # cites only what it was shown
    plot = json.loads(out["--plot"].read_text())
    assert [row["system"] for row in plot] == [f"{s}/{split}" for s in SYSTEMS for split in ("test", "train")]
    assert set(plot[0]) == {"system", "exact_match", "fabricated_rate"}
    assert (root / "cache" / "judge.sqlite").exists() and (root / "cache" / "verify.sqlite").exists()


@pytest.mark.slow
def test_evaluate_without_adapter_or_split_says_what_to_do(trained, verifier, tmp_path):
    root, _, base, adapter = trained
    params = default_params("evaluate", splits=["test"])
    with pytest.raises(StageError, match="run the train stage"):
        evaluate(base, tmp_path, root / "sft", verifier, params)
    with pytest.raises(StageError, match="evaluate.splits"):
        evaluate(base, adapter, tmp_path, verifier, params)


@pytest.mark.slow
def test_an_adapter_taught_json_answers_in_it_and_is_scored_so(tmp_path, tiny_base, verifier):
    """A few training steps on JSON answers: the adapter records its format; evaluate reads it, the
    grounded answers are schema-valid JSON, and text data with that adapter is refused."""
    from citetune.training import train_adapter

    records = sft_records(modes=list(MODES), answer_format="json")
    keep = {s: sorted({r["id"] for r in records if r["split"] == s})[:n]
            for s, n in (("train", 16), ("validation", 2), ("test", 4))}
    splits = write_sft(tmp_path / "sft", [r for r in records if r["id"] in keep[r["split"]]])
    params = default_params("train", quantization="none", batch_size=8, learning_rate=0.01, max_length=448)
    train_adapter(params, tmp_path / "sft" / "train.jsonl", tmp_path / "sft" / "validation.jsonl", tiny_base,
                  tmp_path / "adapter", live_dir=None, device="cpu", max_steps=4)
    assert adapter_format(tmp_path / "adapter") == "json"

    run = evaluate(tiny_base, tmp_path / "adapter", tmp_path / "sft", verifier,
                   default_params("evaluate", splits=["test"], batch_size=8), device="cpu")
    assert sorted(run.metrics) == sorted(SYSTEMS)
    for system, per_split in run.metrics.items():
        assert 0 <= per_split["test"]["malformed_rate"] <= 1
        if system in ("lookup", "bm25") or system.endswith("grounded"):
            assert per_split["test"]["malformed_rate"] == 0 and per_split["test"]["fabricated_rate"] == 0
    grounded = [p for p in run.predictions if p["system"].endswith("grounded")]
    assert len(grounded) == len(splits["test"])  # each mode, grounded
    assert all(p["abstained"] or p["predicted"] for p in grounded)
    assert all(not parse_answer(p["answer"], answer_format="json").malformed for p in grounded)

    from citetune.assistant import (
        Assistant,  # ask, as stages/ask.py builds it from the adapter's format
    )

    assistant = Assistant(tiny_base, tmp_path / "adapter", tmp_path / "sft", verifier, "Cite.", mode="retrieval",
                          device="cpu", answer_format=adapter_format(tmp_path / "adapter"))
    for reply in assistant.ask(["Low-rank adapters make fine-tuning affordable.", "Penguins read moonlight."]):
        assert not reply.malformed and (reply.abstained or reply.works), reply
        assert all(v.status == "verified" and v.title_agrees for v in reply.works), reply

    write_sft(tmp_path / "text", [r for r in sft_records() if r["split"] == "test"])
    with pytest.raises(StageError, match="trained to answer in json"):
        evaluate(tiny_base, tmp_path / "adapter", tmp_path / "text", verifier,
                 default_params("evaluate", splits=["test"]), device="cpu")
    (tmp_path / "adapter" / ADAPTER_FORMAT).unlink()  # an adapter saved before formats: text
    with pytest.raises(StageError, match="trained to answer in text"):
        evaluate(tiny_base, tmp_path / "adapter", tmp_path / "sft", verifier,
                 default_params("evaluate", splits=["test"]), device="cpu")
