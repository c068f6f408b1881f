"""The whole pipeline under DVC, in a temporary copy of the repository, on a reduced sample."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from citetune.base_source import BASE_RECORD
from citetune.checkpoints import last_complete, step_of
from citetune.io import read_csv, read_jsonl
from citetune.testing.standins import FAMILIES, build_standin
from citetune.tiny_model import record_texts

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def sh(cmd, cwd, env):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, shell=isinstance(cmd, str))
    assert r.returncode == 0, f"{cmd} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r.stdout + r.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A fresh git+DVC repo holding the project's files, with params reduced to run in about two minutes.

    The tiny model stays big and trained enough for the headline to hold: the tuned model cites the
    train split's works exactly where the base does not (about half the questions; with hidden_size 64,
    or 12 pretraining epochs, it cited none)."""
    dest = tmp_path_factory.mktemp("e2e") / "repo"
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    for rel in listed:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["download"]["sample_limit"] = 5
    params["base"]["tiny"].update(hidden_size=128, num_layers=2, num_heads=2, vocab_size=1200, pretrain_epochs=20,
                                  pretrain_lr=0.005)
    params["qa"].update(modes=["closed_book", "retrieval"])
    params["train"].update(epochs=12, learning_rate=0.01, batch_size=8, max_length=448)
    params["evaluate"].update(splits=["test", "train"])
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org")
    sh("git init -q && git add -A && git commit -qm init", dest, env)
    return dest, env


def test_dvc_repro_runs_every_stage_and_writes_the_contracts(repo):
    root, env = repo
    out = sh(["dvc", "repro"], root, env)
    for stage in ["download", "curate", "extract", "parse", "merge", "match", "qa", "base", "train", "evaluate"]:
        assert f"Running stage '{stage}'" in out

    manifest = read_jsonl(root / "data/raw/manifest.jsonl")
    assert len(manifest) == 5 and all((root / f"data/raw/pdf/{m['paper_id']}.pdf").exists() for m in manifest)
    report = read_jsonl(root / "data/xml/report.jsonl")
    assert {r["paper_id"] for r in report} == {m["paper_id"] for m in manifest}
    merged = read_csv(root / "data/merged/citations.csv")
    assert merged["paper_id"].nunique() == 5 and len(merged) > 30
    refs = read_csv(root / "data/matched/references.csv")
    assert refs["match_status"].eq("matched").mean() > 0.8
    train = read_jsonl(root / "data/sft/train.jsonl")
    assert train and [m["role"] for m in train[0]["messages"]] == ["system", "user", "assistant"]
    assert (root / "models/adapter/adapter_config.json").exists()
    assert {r["mode"] for r in train} == {"closed_book", "retrieval"}
    metrics = json.loads((root / "metrics/eval.json").read_text())
    assert set(metrics) >= {"base", "lookup", "bm25", "tuned/closed_book", "tuned/retrieval/grounded"}
    # The headline: tuning teaches the model to cite the works of the questions it was tuned on.
    train_split = {model: metrics[model]["train"] for model in ("base", "tuned/closed_book")}
    assert train_split["tuned/closed_book"]["n"] == len(train) // 2 > 0
    assert train_split["tuned/closed_book"]["doi_exact_match"] > train_split["base"]["doi_exact_match"], train_split
    for split in ("test", "train"):  # grounded answers cite only real works
        assert metrics["tuned/closed_book/grounded"][split]["fabricated_rate"] == 0
        assert metrics["tuned/retrieval/grounded"][split]["fabricated_rate"] == 0
    assert len(read_jsonl(root / "data/eval/predictions.jsonl")) > 0
    # base_source looks at the base's source at every run (always_changed): it is all that status names.
    assert sh(["dvc", "status"], root, env).split() == ["base_source:", "always", "changed"]


def test_curation_edit_as_an_experiment_reruns_from_curate_but_not_download(repo):
    root, env = repo
    excluded = read_jsonl(root / "data/raw/manifest.jsonl")[0]["paper_id"]
    (root / "data/curation.yaml").write_text(f"exclude:\n  - id: {excluded}\n    reason: off-topic\nkeep_only: []\n")
    out = sh(["dvc", "exp", "run", "-S", "train.epochs=2"], root, env)
    assert "Running stage 'download'" not in out
    assert "Running stage 'curate'" in out and "Running stage 'train'" in out
    assert excluded not in {r["paper_id"] for r in read_jsonl(root / "data/curated/manifest.jsonl")}
    assert read_jsonl(root / "data/curated/excluded.jsonl")[0]["reason"] == "off-topic"
    assert excluded not in set(read_csv(root / "data/merged/citations.csv")["paper_id"])
    assert json.loads((root / "metrics/train.json").read_text())["epochs"] == 2
    shown = sh(["dvc", "exp", "show", "--no-pager", "--md"], root, env)
    assert "train.epochs" in shown and "doi_exact_match" in shown
    assert "eval.json" in sh(["dvc", "metrics", "show"], root, env)


def test_dvc_repro_after_a_killed_train_resumes_from_its_last_checkpoint(repo):
    root, env = repo
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"].update(epochs=3, save_steps=3)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    tracked = {p: (root / p).read_bytes() for p in ("dvclive/train/metrics.json", "metrics/train.json")}
    killed = subprocess.Popen(["dvc", "repro", "train"], cwd=root, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    while (last := last_complete(root / "models/checkpoints")) is None or step_of(last) < 6:
        assert killed.poll() is None and time.monotonic() < deadline, "train ended before its checkpoint at 6"
        time.sleep(0.1)
    os.killpg(killed.pid, signal.SIGKILL)  # dvc, the stage and its workers, as a power cut would
    killed.wait()
    stopped_at = step_of(last_complete(root / "models/checkpoints"))
    # What git tracks is as the last finished run left it until a new run finishes.
    assert {p: (root / p).read_bytes() for p in tracked} == tracked

    out = sh(["dvc", "repro"], root, env)
    assert "Running stage 'train'" in out and "Running stage 'evaluate'" in out
    resumed = json.loads((root / "metrics/train.json").read_text())
    assert resumed["resumed_from_step"] >= stopped_at >= 6 and f"resumed at step {resumed['resumed_from_step']}" in out
    assert resumed["epochs"] == 3 and not (root / "models/checkpoints").exists()
    assert sh(["dvc", "status"], root, env).split() == ["base_source:", "always", "changed"]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_stand_in_of_each_family_runs_base_train_evaluate_under_dvc(repo, family, tmp_path):
    """A local checkpoint of each family as base.model, as a user would set it: DVC refetches the base,
    trains and evaluates; the adapter names that checkpoint, and the answers are scored."""
    root, env = repo
    checkpoint = build_standin(family, tmp_path / family, record_texts(root / "data/sample"))
    out = sh(["dvc", "exp", "run", "-S", f"base.model={checkpoint}", "-S", "train.epochs=1",
              "-S", "evaluate.splits=[test]"], root, env)
    for stage in ("base", "train", "evaluate"):
        assert f"Running stage '{stage}'" in out
    assert "Running stage 'qa'" not in out  # the data stages do not depend on the model
    assert json.loads((root / f"models/base/{BASE_RECORD}").read_text())["path"] == str(checkpoint)
    config = json.loads((root / "models/adapter/adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(checkpoint)
    metrics = json.loads((root / "metrics/eval.json").read_text())
    tuned = metrics["tuned/closed_book/grounded"]["test"]
    assert tuned["n"] > 0 and tuned["fabricated_rate"] == 0
    assert {"lookup", "bm25", "base"} <= set(metrics)
