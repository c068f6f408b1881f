"""What main says is what a fresh clone gets: `dvc repro` on a copy of the committed files (no data, no
DVC cache) writes the committed dvc.lock's hashes for every output of the data stages, and metrics for the
model stages within the tolerance CPU kernels leave.

The caches under data/cache (Crossref's answers, the local index: SQLite files that hold paths and
times) are not results and are not compared. Why a tolerance for the model stages: on one machine two
runs are bit-identical (seeded, deterministic kernels), but PyTorch's CPU kernels pick their vector
width (AVX2, AVX-512) by the processor, so sums are rounded in another order on another processor, and
600 training steps carry those last-bit differences into the weights. Counts of the data (n, steps,
examples) must match exactly; counts of the model's answers may move by 3 (claims), rates by 0.07
(3 of the 45 test claims), other figures (losses) by 5%; timings are not compared.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA_STAGES = ["download", "curate", "extract", "parse", "merge", "match", "qa"]
CACHES = "data/cache/"
MODEL_METRICS = ["metrics/train.json", "metrics/eval.json"]
RATE_SUFFIXES = ("_rate", "_match", "_recall", "_precision", "_accuracy")
ANSWER_COUNTS = {"supported", "unsupported", "unverified"}
RATE_TOLERANCE, COUNT_TOLERANCE, RELATIVE_TOLERANCE = 0.07, 3, 0.05
NOT_COMPARED = {"seconds", "device"}


def _leaves(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in NOT_COMPARED:
                yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, (*path, i))
    else:
        yield path, value


def metric_differences(committed: dict, fresh: dict) -> list[str]:
    """Where two metrics files differ beyond the tolerance (see the module's docstring)."""
    ours, theirs = dict(_leaves(committed)), dict(_leaves(fresh))
    out = [f"{'.'.join(map(str, k))}: only in {'the committed' if k in ours else 'the fresh'} file"
           for k in ours.keys() ^ theirs.keys()]
    for key in ours.keys() & theirs.keys():
        a, b, name = ours[key], theirs[key], str(key[-1])
        if a is None or b is None or isinstance(a, str) or isinstance(b, str):
            close = a == b
        elif name.endswith(RATE_SUFFIXES):
            close = abs(a - b) <= RATE_TOLERANCE
        elif name in ANSWER_COUNTS:
            close = abs(a - b) <= COUNT_TOLERANCE
        elif isinstance(a, float) or isinstance(b, float):
            close = abs(a - b) <= RELATIVE_TOLERANCE * max(abs(a), abs(b))
        else:
            close = a == b
        if not close:
            out.append(f"{'.'.join(map(str, key))}: committed {a!r}, fresh {b!r}")
    return sorted(out)


def test_metric_differences_hold_counts_exact_and_figures_within_tolerance():
    committed = {"test": {"n": 45, "doi_exact_match": 0.122, "unverified": 2, "seconds": 3.0},
                 "eval_loss": 0.659, "train_loss_final": 0.05}
    assert metric_differences(committed, {"test": {"n": 45, "doi_exact_match": 0.144, "unverified": 5, "seconds": 9.0},
                                          "eval_loss": 0.67, "train_loss_final": 0.051}) == []
    assert metric_differences(committed, {"test": {"n": 44, "doi_exact_match": 0.222, "unverified": 6},
                                          "eval_loss": 0.8, "train_loss_final": 0.11}) == [
        "eval_loss: committed 0.659, fresh 0.8", "test.doi_exact_match: committed 0.122, fresh 0.222",
        "test.n: committed 45, fresh 44", "test.unverified: committed 2, fresh 6",
        "train_loss_final: committed 0.05, fresh 0.11"]
    assert metric_differences({"a": 1}, {"b": 1}) == ["a: only in the committed file", "b: only in the fresh file"]


def _outs(lock: dict, stage: str) -> dict[str, str]:
    return {o["path"]: o["md5"] for o in lock["stages"][stage].get("outs", []) if not o["path"].startswith(CACHES)}


@pytest.mark.slow
def test_a_fresh_clone_reproduces_the_committed_lock_and_metrics(tmp_path):
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    repo = tmp_path / "clone"
    for rel in listed:  # what a clone of main holds: no data, no models, no DVC cache
        if (ROOT / rel).is_file():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, repo / rel)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org")
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "clone"], ["dvc", "repro"]):
        r = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    committed = yaml.safe_load((ROOT / "dvc.lock").read_text())
    fresh = yaml.safe_load((repo / "dvc.lock").read_text())
    for stage in DATA_STAGES:  # byte for byte
        assert _outs(fresh, stage) == _outs(committed, stage), stage
    for path in MODEL_METRICS:
        differences = metric_differences(json.loads((ROOT / path).read_text()), json.loads((repo / path).read_text()))
        assert differences == [], f"{path}:\n" + "\n".join(differences)
