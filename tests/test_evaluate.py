"""The evaluate stage: DOIs pulled out of answers, the scores, and the stage on a tiny trained adapter."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from citetune.errors import StageError
from citetune.evaluation import evaluate, known_dois, score
from citetune.ids import extract_dois
from citetune.io import read_jsonl
from citetune.params import default_params
from citetune.testing.sft_sample import sft_records, write_references, write_sft

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("text, dois", [
    ("- LoRA: Low-Rank Adaptation of Large Language Models (2021). DOI: 10.48550/arXiv.2106.09685",
     ["10.48550/arxiv.2106.09685"]),
    ("- A (2017). DOI: 10.48550/arxiv.1706.03762\n- B (2018). DOI: 10.48550/arxiv.1810.04805.",
     ["10.48550/arxiv.1706.03762", "10.48550/arxiv.1810.04805"]),
    ("See https://doi.org/10.1145/3292500.3330701, and again (doi:10.1145/3292500.3330701).",
     ["10.1145/3292500.3330701"]),
    ("Legacy: 10.1002/(sici)1097-4571(199806)49:8 is one DOI;", ["10.1002/(sici)1097-4571(199806)49:8"]),
    ('Quoted "10.5555/ct.2021.2628"; bracketed [10.1000/XYZ-1] and a bare 10.1000/abc:', 
     ["10.5555/ct.2021.2628", "10.1000/xyz-1", "10.1000/abc"]),
    ("No identifier here, only 10.48 and arXiv:2106.09685 and 10.123/short-prefix.", []),
    ("", []),
])
def test_extract_dois_from_hand_written_answers(text, dois):
    assert extract_dois(text) == dois


def test_scores_on_hand_written_rows():
    known = {"10.1/a", "10.1/b", "10.1/c", "10.1/d"}
    rows = [
        {"dois": ["10.1/a"], "predicted": ["10.1/a"]},                   # exact
        {"dois": ["10.1/a", "10.1/b"], "predicted": ["10.1/b"]},         # half the gold
        {"dois": ["10.1/c"], "predicted": ["10.1/c", "10.9/invented"]},  # right one plus a fabricated one
        {"dois": ["10.1/d"], "predicted": []},                           # no answer
        {"dois": ["10.1/b", "10.1/a"], "predicted": ["10.1/a", "10.1/b"]},  # order does not matter
    ]
    s = score(rows, known)
    assert s["n"] == 5
    assert s["doi_exact_match"] == pytest.approx(2 / 5)
    assert s["doi_recall"] == pytest.approx(5 / 7)
    assert s["fabricated_rate"] == pytest.approx(1 / 5)
    assert s["answered_rate"] == pytest.approx(4 / 5)
    assert score([], known)["doi_exact_match"] is None


def test_known_dois_are_the_matched_ones_plus_gold(tmp_path):
    write_references(tmp_path / "references.csv", ["10.1/A", "10.1/b"])
    assert known_dois(tmp_path / "references.csv", [{"dois": ["10.2/c"]}]) == {"10.1/a", "10.1/b", "10.2/c"}
    (tmp_path / "bad.csv").write_text("doi\n10.1/a\n")
    with pytest.raises(StageError, match="match_status"):
        known_dois(tmp_path / "bad.csv")
    with pytest.raises(StageError, match="run the match stage"):
        known_dois(tmp_path / "none.csv")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_base, trained_adapter):
    """The session's tiny 4-bit base and adapter (conftest.py), small SFT splits, matched references."""
    root = tmp_path_factory.mktemp("evaluate")
    records = sft_records()
    by_split = {name: [r for r in records if r["split"] == name] for name in ("train", "validation", "test")}
    splits = write_sft(root / "sft", by_split["train"][:16] + by_split["validation"][:2] + by_split["test"][:4])
    write_references(root / "references.csv", sorted({d for r in records for d in r["dois"]}))
    return root, splits, tiny_base, trained_adapter["--out-dir"]


@pytest.mark.slow
def test_evaluate_stage_writes_metrics_predictions_and_plot(trained):
    root, splits, base, adapter = trained
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump({"evaluate": {"splits": ["test", "train"], "max_new_tokens": 24, "batch_size": 8},
                                      "train": default_params("train", quantization="4bit").model_dump(mode="json")}))
    out = {"--predictions": root / "eval" / "predictions.jsonl", "--metrics": root / "metrics" / "eval.json",
           "--plot": root / "metrics" / "eval_plot.json"}
    cmd = [sys.executable, "-m", "stages.evaluate", "--params", str(params), "--sft-dir", str(root / "sft"),
           "--references", str(root / "references.csv"), "--base-dir", str(base),
           "--adapter-dir", str(adapter)] + [str(x) for kv in out.items() for x in kv]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]

    metrics = json.loads(out["--metrics"].read_text())
    assert set(metrics) == {"base", "tuned"} and all(set(m) == {"test", "train"} for m in metrics.values())
    preds = read_jsonl(out["--predictions"])
    n = {"test": len(splits["test"]), "train": len(splits["train"])}
    assert len(preds) == 2 * (n["test"] + n["train"])
    for p in preds:
        assert set(p) >= {"id", "split", "model", "question", "dois", "answer", "predicted", "exact"}
        assert p["predicted"] == extract_dois(p["answer"]) and p["exact"] == (set(p["predicted"]) == set(p["dois"]))
    for model, per_split in metrics.items():
        for split, m in per_split.items():
            mine = [p for p in preds if p["model"] == model and p["split"] == split]
            assert m["n"] == n[split] == len(mine)
            assert m["doi_exact_match"] == pytest.approx(sum(p["exact"] for p in mine) / len(mine))
            assert m["answered_rate"] == pytest.approx(sum(bool(p["predicted"]) for p in mine) / len(mine))
    plot = json.loads(out["--plot"].read_text())
    assert [row["model"] for row in plot] == ["base/test", "base/train", "tuned/test", "tuned/train"]
    assert plot[3]["exact_match"] == metrics["tuned"]["train"]["doi_exact_match"]
    assert set(plot[0]) == {"model", "exact_match", "fabricated_rate"}


@pytest.mark.slow
def test_evaluate_without_adapter_or_split_says_what_to_do(trained, tmp_path):
    root, _, base, adapter = trained
    with pytest.raises(StageError, match="run the train stage"):
        evaluate(base, tmp_path, root / "sft", root / "references.csv", ["test"])
    with pytest.raises(StageError, match="evaluate.splits"):
        evaluate(base, adapter, tmp_path, root / "references.csv", ["test"])
