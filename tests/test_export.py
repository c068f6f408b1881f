"""export: the adapter merged into its base answers as base + adapter does, loads without PEFT, stops."""

import json
import subprocess
import sys
from pathlib import Path

from citetune.generation import generate
from citetune.models import load_base, load_tokenizer

ROOT = Path(__file__).resolve().parents[1]


def test_the_merged_model_answers_as_the_base_with_its_adapter(tmp_path, tiny_base, sft_dir, trained_adapter,
                                                               monkeypatch):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter = trained_adapter["--out-dir"]
    run = subprocess.run([sys.executable, "-m", "stages.export", "--base-dir", str(tiny_base), "--adapter-dir",
                          str(adapter), "--out-dir", str(tmp_path / "merged")], cwd=ROOT, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not (tmp_path / "merged/adapter_config.json").exists()
    assert (tmp_path / "merged/citetune_modes.json").read_text() == (adapter / "citetune_modes.json").read_text()

    records = [json.loads(line) for line in (sft_dir / "train.jsonl").read_text().splitlines()][:6]
    prompts = [r["messages"][:-1] for r in records]
    tok = load_tokenizer(adapter)
    with_adapter = PeftModel.from_pretrained(load_base(tiny_base, "none", "cpu"), str(adapter))
    expected = generate(with_adapter, tok, prompts, 48, batch_size=6)

    monkeypatch.chdir(tmp_path)  # loads from anywhere, without PEFT
    merged = AutoModelForCausalLM.from_pretrained("merged")
    answers = generate(merged, load_tokenizer("merged"), prompts, 48, batch_size=6)
    assert [(a.text, a.finished) for a in answers] == [(e.text, e.finished) for e in expected]
    assert tok.convert_tokens_to_ids("<|im_end|>") in merged.generation_config.eos_token_id


def test_export_without_an_adapter_says_what_to_run(tmp_path, tiny_base):
    run = subprocess.run([sys.executable, "-m", "stages.export", "--base-dir", str(tiny_base), "--adapter-dir",
                          str(tmp_path / "none"), "--out-dir", str(tmp_path / "merged")], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 1 and "dvc repro train" in run.stderr and "Traceback" not in run.stderr
