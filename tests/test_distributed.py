"""Several processes: the train stage under `accelerate launch` with the project's multi-GPU config, run as
two CPU processes: the data is split between them and one of them writes the adapter and the metrics."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from citetune.params import default_params

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_processes_share_the_steps_and_write_one_adapter(tmp_path, tiny_base, sft_dir):
    params = tmp_path / "params.yaml"
    train = default_params("train", quantization="none", epochs=1, batch_size=4, max_length=448, save_steps=2,
                           launcher="accelerate launch --config_file configs/accelerate/multi_gpu.yaml")
    params.write_text(yaml.safe_dump({"train": train.model_dump(mode="json")}))
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    cmd = [accelerate, "launch", "--config_file", "configs/accelerate/multi_gpu.yaml", "-m", "stages.train",
           "--params", str(params), "--train", str(sft_dir / "train.jsonl"),
           "--validation", str(sft_dir / "validation.jsonl"), "--base-dir", str(tiny_base),
           "--out-dir", str(tmp_path / "adapter"), "--metrics", str(tmp_path / "train.json"),
           "--live-dir", str(tmp_path / "live"), "--checkpoint-dir", str(tmp_path / "checkpoints")]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert run.returncode == 0, run.stderr[-3000:]
    examples = len((sft_dir / "train.jsonl").read_text().splitlines())
    metrics = json.loads((tmp_path / "train.json").read_text())
    assert metrics["steps"] == -(-examples // (2 * 4))  # each step took a batch in each process
    assert run.stdout.count("train: ") == 1  # one report
    assert (tmp_path / "adapter/adapter_model.safetensors").exists() and not (tmp_path / "checkpoints").exists()
    assert not list(tmp_path.glob(".adapter.tmp-*"))
