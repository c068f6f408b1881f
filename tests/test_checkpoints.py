"""Checkpoints: a killed train resumes from the last whole checkpoint of the same run, and ends where an
uninterrupted run ends, even when killed after its first epoch."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from citetune.checkpoints import last_complete, resume_point, run_fingerprint, step_of
from citetune.params import default_params

ROOT = Path(__file__).resolve().parents[1]


def _checkpoint(folder: Path, whole: bool = True) -> None:
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"w")
    if whole:
        (folder / "trainer_state.json").write_text("{}")


def test_a_checkpoint_cut_short_by_the_kill_is_not_resumed_from(tmp_path):
    _checkpoint(tmp_path / "checkpoint-5")
    _checkpoint(tmp_path / "checkpoint-10", whole=False)
    assert last_complete(tmp_path).name == "checkpoint-5"
    assert last_complete(tmp_path / "absent") is None
    full = tmp_path / "checkpoint-12"  # full fine-tuning saves the whole model, no adapter file
    full.mkdir()
    (full / "model.safetensors").write_bytes(b"w")
    (full / "trainer_state.json").write_text("{}")
    assert last_complete(tmp_path) == full


def test_checkpoints_of_another_run_are_thrown_away(tmp_path, tiny_base, sft_dir):
    params = default_params("train")
    inputs = [sft_dir / "train.jsonl", sft_dir / "validation.jsonl"]
    fingerprint = run_fingerprint(params, inputs, tiny_base)
    ckpt = tmp_path / "checkpoints"
    assert resume_point(ckpt, fingerprint) is None
    _checkpoint(ckpt / "checkpoint-5")
    assert resume_point(ckpt, fingerprint) == ckpt / "checkpoint-5"
    # How often it saves is not what it learns; the learning rate is.
    assert run_fingerprint(params.model_copy(update={"save_steps": 7}), inputs, tiny_base) == fingerprint
    other = run_fingerprint(params.model_copy(update={"learning_rate": 0.1}), inputs, tiny_base)
    assert resume_point(ckpt, other) is None and not (ckpt / "checkpoint-5").exists()


def _train_cmd(tmp_path: Path, name: str, tiny_base: Path, sft_dir: Path, params: Path) -> list[str]:
    return [sys.executable, "-m", "stages.train", "--params", str(params), "--train", str(sft_dir / "train.jsonl"),
            "--validation", str(sft_dir / "validation.jsonl"), "--base-dir", str(tiny_base),
            "--out-dir", str(tmp_path / name / "adapter"), "--metrics", str(tmp_path / name / "train.json"),
            "--live-dir", str(tmp_path / name / "live"), "--checkpoint-dir", str(tmp_path / name / "checkpoints")]


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["trl", "manual"])
def test_a_killed_train_resumes_and_ends_as_an_uninterrupted_one(loop, tmp_path, tiny_base, sft_dir):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"train": default_params(
        "train", loop=loop, quantization="none", epochs=2, batch_size=4, learning_rate=0.01, max_length=448,
        save_steps=4).model_dump(mode="json")}))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    run = subprocess.run(_train_cmd(tmp_path, "whole", tiny_base, sft_dir, params), cwd=ROOT, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    whole = json.loads((tmp_path / "whole/train.json").read_text())
    assert whole["resumed_from_step"] == 0 and not (tmp_path / "whole/checkpoints").exists()

    killed = subprocess.Popen(_train_cmd(tmp_path, "killed", tiny_base, sft_dir, params), cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    # Killed in its second epoch: the resumed run must replay that epoch's batch order, not draw a new one.
    while (last := last_complete(tmp_path / "killed/checkpoints")) is None or step_of(last) < 16:
        assert killed.poll() is None and time.monotonic() < deadline, "the run ended before its checkpoint at 16"
        time.sleep(0.1)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    stopped_at = int(last_complete(tmp_path / "killed/checkpoints").name.split("-")[1])
    assert not (tmp_path / "killed/adapter").exists()

    rerun = subprocess.run(_train_cmd(tmp_path, "killed", tiny_base, sft_dir, params), cwd=ROOT, env=env,
                           capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    resumed = json.loads((tmp_path / "killed/train.json").read_text())
    assert resumed["resumed_from_step"] >= stopped_at >= 16 and f"resumed at step {resumed['resumed_from_step']}" \
        in rerun.stdout
    assert resumed["steps"] == whole["steps"] and not (tmp_path / "killed/checkpoints").exists()
    a = load_file(tmp_path / "whole/adapter/adapter_model.safetensors")
    b = load_file(tmp_path / "killed/adapter/adapter_model.safetensors")
    assert a.keys() == b.keys() and all((a[k] - b[k]).abs().max() < 1e-4 for k in a)
    # The loss curve runs from step 1 to the end once, without the points logged after the checkpoint twice.
    steps = [int(line.split("\t")[0]) for line in
             (tmp_path / "killed/live/plots/metrics/train/loss.tsv").read_text().splitlines()[1:]]
    assert steps == sorted(set(steps)) and steps[-1] == whole["steps"]
