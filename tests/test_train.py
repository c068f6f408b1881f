"""The train stage: TRL SFT with LoRA on a 4-bit tiny base, loss on the answer only, DVCLive logs."""

import json

import pytest
import torch

from citetune.errors import StageError
from citetune.models import load_base, load_tokenizer
from citetune.params import default_params
from citetune.testing.sft_sample import sft_records
from citetune.training import (
    build_trainer,
    load_split,
    overlong,
    to_prompt_completion,
    train_adapter,
)


def test_records_become_conversational_prompt_completion_pairs():
    rec = sft_records()[0]
    pair = to_prompt_completion(rec)
    assert [m["role"] for m in pair["prompt"]] == ["system", "user"]
    assert pair["completion"] == [rec["messages"][-1]] and "DOI: 10." in pair["completion"][0]["content"]
    with pytest.raises(ValueError, match="assistant"):
        to_prompt_completion({"id": "x", "messages": [{"role": "user", "content": "q"}]})


def test_malformed_records_are_skipped_with_their_reason(tmp_path):
    good = sft_records()[:2]
    lines = [json.dumps(good[0]), json.dumps({"id": "p:9", "messages": [{"role": "user", "content": "q"}]}),
             json.dumps({"id": "p:10", "messages": ["not a message"]}), json.dumps(good[1])]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    ds, skipped = load_split(tmp_path / "train.jsonl")
    assert len(ds) == 2 and ds[0]["completion"] == [good[0]["messages"][-1]]
    assert [s["id"] for s in skipped] == ["p:9", "p:10"] and "assistant" in skipped[0]["reason"]
    assert load_split(tmp_path / "absent.jsonl", required=False) == (None, [])


def test_loss_is_masked_to_the_answer(tiny_base, sft_dir, tmp_path):
    """The collated batch's labels are -100 on every prompt token and equal the answer's tokens after it."""
    train_ds, _ = load_split(sft_dir / "train.jsonl")
    params = default_params("train", quantization="none", batch_size=4, max_length=448)
    trainer = build_trainer(params, train_ds, None, tiny_base, tmp_path, device="cpu")
    tok = trainer.processing_class
    batch = next(iter(trainer.get_train_dataloader()))
    answers = {rec["messages"][-1]["content"] for rec in json.loads("[" + ",".join(
        (sft_dir / "train.jsonl").read_text().splitlines()) + "]")}
    for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"]):
        ids, labels = ids[mask.bool()], labels[mask.bool()]
        answer_start = int((labels != -100).nonzero()[0])
        assert (labels[:answer_start] == -100).all() and (labels[answer_start:] == ids[answer_start:]).all()
        prompt, answer = tok.decode(ids[:answer_start]), tok.decode(ids[answer_start:])
        assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
        assert answer.endswith("<|im_end|>\n") and answer.removesuffix("<|im_end|>\n") in answers
    assert (batch["labels"][~batch["attention_mask"].bool()] == -100).all()  # padding never counts


@pytest.mark.slow
def test_qlora_stage_lowers_the_loss_and_saves_a_loadable_adapter(trained_adapter, tiny_base):
    """The session's adapter (conftest.py) is the 4-bit train stage's output: 6 epochs, batch 8."""
    import bitsandbytes as bnb
    from peft import PeftModel

    out = trained_adapter
    metrics = json.loads(out["--metrics"].read_text())
    assert metrics["quantization"] == "4bit" and metrics["device"] == "cpu"
    assert metrics["steps"] == 6 * -(-metrics["examples"] // 8) and 0 < metrics["trainable_params"] < metrics["total_params"]
    assert metrics["eval_loss"] is not None

    # DVCLive: the loss curves at the trainer's steps, where dvc.yaml's plots look; dvc.yaml untouched.
    rows = (out["--live-dir"] / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    assert rows[0] == "step\tloss" and len(rows) - 1 >= metrics["steps"] // 2
    # Batches of either mode differ in loss (they are grouped by length): compare whole epochs.
    losses = [float(row.split("\t")[1]) for row in rows[1:]]
    epoch = len(losses) // 6
    assert sum(losses[-epoch:]) < 0.85 * sum(losses[:epoch]), losses
    assert int(rows[-1].split("\t")[0]) == metrics["steps"]
    assert (out["--live-dir"] / "plots" / "metrics" / "eval" / "loss.tsv").exists()
    assert not (out["--live-dir"] / "dvc.yaml").exists()

    adapter = out["--out-dir"]
    assert (adapter / "adapter_config.json").exists() and (adapter / "tokenizer.json").exists()
    assert not list(adapter.parent.glob(".adapter.*"))
    model = PeftModel.from_pretrained(load_base(tiny_base, "4bit", "cpu"), str(adapter))
    lora_on_4bit = [m for m in model.modules() if hasattr(m, "lora_A") and isinstance(m.base_layer, bnb.nn.Linear4bit)]
    assert lora_on_4bit
    tok = load_tokenizer(adapter)
    enc = tok("<|im_start|>user\nWhich work?<|im_end|>\n<|im_start|>assistant\n", return_tensors="pt")
    with torch.no_grad():
        assert model.generate(**enc, max_new_tokens=4, do_sample=False).shape[1] > enc["input_ids"].shape[1]


def test_missing_or_broken_data_fails_with_what_to_do(tiny_base, sft_dir, tmp_path):
    params = default_params("train", quantization="none")
    with pytest.raises(StageError, match="run the qa stage"):
        train_adapter(params, tmp_path / "nope.jsonl", tmp_path / "nope2.jsonl", tiny_base, tmp_path / "a",
                      live_dir=None)
    (tmp_path / "bad.jsonl").write_text('{"id": 1, "messages": []}\n')
    with pytest.raises(StageError, match="no usable SFT records"):
        train_adapter(params, tmp_path / "bad.jsonl", tmp_path / "nope2.jsonl", tiny_base, tmp_path / "a",
                      live_dir=None)
    with pytest.raises(StageError, match="run the base stage"):
        train_adapter(params, sft_dir / "train.jsonl", tmp_path / "nope2.jsonl", tmp_path, tmp_path / "a",
                      live_dir=None)
    assert not (tmp_path / "a").exists()


def test_examples_longer_than_max_length_are_counted(tiny_base, sft_dir):
    train_ds, _ = load_split(sft_dir / "train.jsonl")
    tok = load_tokenizer(tiny_base)
    cut, longest = overlong(tok, train_ds, 64)
    assert cut == len(train_ds) and longest > 64
    assert overlong(tok, train_ds, longest) == (0, longest)
    assert overlong(tok, train_ds, longest - 1)[0] >= 1
