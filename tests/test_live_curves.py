"""The train stage's DVCLive folder: a killed run leaves it as the last finished run wrote it."""

import json
import subprocess
import sys
from pathlib import Path

from citetune.training import DVCLiveLosses

ROOT = Path(__file__).resolve().parents[1]


def finished_run(live: Path) -> dict[str, bytes]:
    """live/ as a finished run left it (and git tracks it); returns its files' bytes."""
    (live / "plots/metrics/train").mkdir(parents=True)
    (live / "plots/metrics/train/loss.tsv").write_text("step\tloss\n1\t9.0\n2\t8.0\n")
    (live / "metrics.json").write_text(json.dumps({"train": {"loss": 8.0}, "step": 2}))
    return files(live)


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def steps(live: Path) -> list[int]:
    return [int(line.split("\t")[0]) for line in (live / "plots/metrics/train/loss.tsv").read_text().splitlines()[1:]]


def test_a_killed_run_leaves_the_last_finished_curves_in_place(tmp_path):
    live = tmp_path / "dvclive/train"
    before = finished_run(live)
    # The run is killed -9 after logging three steps: it never closes.
    script = ("import os, signal, sys; from citetune.training import DVCLiveLosses\n"
              "curves = DVCLiveLosses(sys.argv[1])\n"
              "for step in (1, 2, 3): curves.log(step, {'loss': 1.0 / step})\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    killed = subprocess.run([sys.executable, "-c", script, str(live)], cwd=ROOT, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    assert files(live) == before
    partial = tmp_path / "dvclive/.train.partial"
    assert steps(partial) == [1, 2, 3]
    git = subprocess.run(["git", "init", "-q", str(tmp_path)], capture_output=True)
    if git.returncode == 0:  # the killed run's folder never shows in `git status`
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=tmp_path,
                                capture_output=True, text=True).stdout
        assert ".train.partial" not in status and "dvclive/train/metrics.json" in status

    # Resumed from its checkpoint at step 2: the curve goes on from there, and replaces live/ when done.
    curves = DVCLiveLosses(live, resume_step=2)
    assert files(live) == before
    for step in (3, 4):
        curves.log(step, {"loss": 1.0 / step})
    curves.close()
    assert steps(live) == [1, 2, 3, 4]
    assert json.loads((live / "metrics.json").read_text())["train"]["loss"] == 0.25
    assert not partial.exists() and not (live / ".gitignore").exists()

    # A new run starts its curves afresh, and they replace the old ones only when it ends.
    curves = DVCLiveLosses(live)
    curves.log(1, {"loss": 5.0})
    assert steps(live) == [1, 2, 3, 4]
    curves.close()
    assert steps(live) == [1]
