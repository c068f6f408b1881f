"""The base stage: the tiny model built offline from the sample corpus, local paths, hub ids offline."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from citetune.base_source import BASE_RECORD, fetch_base
from citetune.errors import StageError
from citetune.models import load_base, load_tokenizer
from citetune.params import default_params
from citetune.tiny_model import (
    build_tiny_base,
    paper_texts,
    record_texts,
    train_tokenizer,
)

ROOT = Path(__file__).resolve().parents[1]
LORA_DOI = "10.48550/arXiv.2106.09685"  # as data/sample/crossref.jsonl prints it
CLOSED = "http://127.0.0.1:9"  # a hub endpoint where nothing listens: the hub is unreachable


def test_tiny_base_is_saved_with_tokenizer_chat_template_and_card(tiny_base, tiny_params):
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md"):
        assert (tiny_base / name).exists(), name
    config = json.loads((tiny_base / "config.json").read_text())
    assert config["model_type"] == "llama" and config["hidden_size"] == 64 and config["num_hidden_layers"] == 2
    card = (tiny_base / "README.md").read_text()
    assert f"pretrained as a causal LM for {tiny_params.pretrain_epochs} epochs" in card and "base.model" in card
    assert not list(tiny_base.parent.glob(".base.*")), "the temp dir must be gone after the rename"


def test_tokenizer_round_trips_dois_compactly_and_renders_chat(tiny_base):
    tok = load_tokenizer(tiny_base)
    answer = f"- LoRA: Low-Rank Adaptation of Large Language Models (2021). DOI: {LORA_DOI}"
    ids = tok(answer, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == answer
    unseen = "10.1234/never.seen-before_(x)"
    assert tok.decode(tok(unseen, add_special_tokens=False)["input_ids"]) == unseen  # byte-level: no UNK
    messages = [{"role": "system", "content": "Be exact."}, {"role": "user", "content": "Which work?"}]
    prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert prompt == ("<|im_start|>system\nBe exact.<|im_end|>\n<|im_start|>user\nWhich work?<|im_end|>\n"
                      "<|im_start|>assistant\n")
    full = tok.apply_chat_template(messages + [{"role": "assistant", "content": "A"}], tokenize=False)
    assert full.startswith(prompt) and full.endswith("A<|im_end|>\n")
    assert tok.eos_token == "<|im_end|>" and tok.pad_token_id != tok.eos_token_id


def test_corpus_dois_are_single_tokens_at_the_default_vocab_size():
    sample = ROOT / "data" / "sample"
    tok = train_tokenizer(paper_texts(sample) + record_texts(sample), default_params("base").tiny.vocab_size)
    doi_ids = tok(f"DOI: {LORA_DOI}", add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(doi_ids)[-1] == "Ġ" + LORA_DOI  # 'Ġ' is byte-level BPE's space
    long_doi = "10.5555/ct.2021.2628"  # a distractor record's DOI
    assert len(tok(f"DOI: {long_doi}", add_special_tokens=False)["input_ids"]) <= 4


@pytest.mark.parametrize("quantization", ["none", "4bit"])
def test_base_generates_in_full_precision_and_in_4bit(tiny_base, quantization):
    import bitsandbytes as bnb

    tok = load_tokenizer(tiny_base)
    model = load_base(tiny_base, quantization, "cpu")
    quantized = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert bool(quantized) == (quantization == "4bit")
    prompt = tok.apply_chat_template([{"role": "user", "content": "Which work?"}], tokenize=False,
                                     add_generation_prompt=True)
    enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=6, min_new_tokens=6, do_sample=False,
                             pad_token_id=tok.pad_token_id)
    assert out.shape[1] == enc["input_ids"].shape[1] + 6


def test_tiny_base_is_deterministic(tiny_params, tmp_path):
    small = tiny_params.model_copy(update={"vocab_size": 600, "hidden_size": 32})
    for name in ("a", "b"):
        build_tiny_base(small, tmp_path / name, ROOT / "data" / "sample", pretrain_epochs=1)
    for name in ("model.safetensors", "tokenizer.json", "README.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_local_path_is_copied_and_loads(tiny_base, tmp_path):
    info = fetch_base(str(tiny_base), tmp_path / "copy")
    assert info["source"] == "local"
    assert (tmp_path / "copy" / "model.safetensors").read_bytes() == (tiny_base / "model.safetensors").read_bytes()
    assert load_base(tmp_path / "copy", "none", "cpu").config.hidden_size == 64


def test_unusable_models_fail_with_what_to_do(tmp_path):
    # The hub is unreachable (and the repo does not exist anyway): a clear StageError, no half dir.
    with pytest.raises(StageError, match="base.model: tiny"):
        fetch_base("citetune-tests/no-such-model", tmp_path / "hub", revision="main", endpoint=CLOSED)
    assert not (tmp_path / "hub").exists() and not list(tmp_path.glob(".hub.*"))
    with pytest.raises(StageError, match="does not exist"):
        fetch_base("./models/nowhere", tmp_path / "x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StageError, match="no config.json"):
        fetch_base(str(tmp_path / "empty"), tmp_path / "x")
    with pytest.raises(StageError, match="run the base stage"):
        load_base(tmp_path / "empty", "none", "cpu")


def test_base_stage_script_copies_a_local_model(tiny_base, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"base": default_params("base", model=str(tiny_base)).model_dump(mode="json")}))
    out = tmp_path / "models" / "base"
    r = subprocess.run([sys.executable, "-m", "stages.base", "--params", str(params), "--sample-dir", "data/sample",
                        "--out-dir", str(out)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (out / "config.json").exists() and "(local)" in r.stdout
    recorded = json.loads((out / BASE_RECORD).read_text())
    assert recorded["source"] == "local" and recorded["path"] == str(tiny_base.resolve()) and recorded["fingerprint"]
    missing = default_params("base", model="citetune-tests/no-such-model")
    params.write_text(yaml.safe_dump({"base": missing.model_dump(mode="json")}))
    r = subprocess.run([sys.executable, "-m", "stages.base", "--params", str(params), "--sample-dir", "data/sample",
                        "--out-dir", str(out)],
                       cwd=ROOT, capture_output=True, text=True, env={**os.environ, "HF_ENDPOINT": CLOSED})
    assert r.returncode == 1 and "base.model: tiny" in r.stderr and "Traceback" not in r.stderr
