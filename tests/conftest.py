"""What several test modules share, built once per session: the tiny base model, SFT splits from the
sample corpus, and a LoRA adapter trained on them by the train stage."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from citetune.params import TinyModelParams, default_params
from citetune.qa import MODES
from citetune.testing.sft_sample import sft_records, write_sft
from citetune.tiny_model import build_tiny_base

ROOT = Path(__file__).resolve().parents[1]
# Every field given, so that the shape does not follow params.yaml's defaults.
TINY = TinyModelParams(vocab_size=1200, hidden_size=64, num_layers=2, num_heads=2, max_length=448,
                       pretrain_epochs=15, pretrain_lr=2e-3, seed=0)
# The adapter: 4-bit base, enough steps for the loss to fall clearly on the SFT records below.
ADAPTER_TRAIN = {"quantization": "4bit", "epochs": 6, "batch_size": 8, "learning_rate": 0.01, "max_length": 448,
                 "lora_r": 16, "lora_alpha": 32}


@pytest.fixture(scope="session")
def tiny_params() -> TinyModelParams:
    """The tests' tiny model: small enough to pretrain in seconds on a CPU."""
    return TINY


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory, tiny_params) -> Path:
    """The tiny base, built from the sample corpus as the base stage builds it."""
    out = tmp_path_factory.mktemp("models") / "base"
    info = build_tiny_base(tiny_params, out, ROOT / "data" / "sample")
    assert info["parameters"] > 0 and info["texts"]["records"] > 0
    return out


@pytest.fixture(scope="session")
def sft_dir(tmp_path_factory) -> Path:
    """train/validation/test jsonl files of the sample corpus: the first 24, 3 and 3 claims of each split,
    in both modes (one adapter for both, as qa.modes can ask), and the library."""
    out = tmp_path_factory.mktemp("sft")
    records = sft_records(modes=list(MODES))
    first = {}
    for r in records:
        first.setdefault(r["split"], [])
        if r["id"] not in first[r["split"]]:
            first[r["split"]].append(r["id"])
    keep = set(first["train"][:24] + first["validation"][:3] + first["test"][:3])
    chosen = [r for r in records if r["id"] in keep]
    assert len(chosen) == 60 and any(r["abstain"] for r in chosen)
    write_sft(out, chosen)
    return out


@pytest.fixture(scope="session")
def trained_adapter(tmp_path_factory, tiny_base, sft_dir) -> dict[str, Path]:
    """The train stage run once, as dvc runs it: the paths it was given and wrote."""
    root = tmp_path_factory.mktemp("train")
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump({"train": default_params("train", **ADAPTER_TRAIN).model_dump(mode="json")}))
    out = {"--out-dir": root / "adapter", "--metrics": root / "metrics" / "train.json",
           "--live-dir": root / "dvclive" / "train"}
    cmd = [sys.executable, "-m", "stages.train", "--params", str(params), "--base-dir", str(tiny_base),
           "--train", str(sft_dir / "train.jsonl"), "--validation", str(sft_dir / "validation.jsonl")]
    r = subprocess.run(cmd + [str(x) for kv in out.items() for x in kv], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return out
