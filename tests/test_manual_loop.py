"""train.loop: manual — the hand-written loop: TRL's data and masking, its loss, accumulation, clipping,
and a short real training on the tiny 4-bit base that saves an adapter the evaluation can load."""

import json

import pytest
import torch

from citetune.manual_loop import (
    ManualLoop,
    collate,
    load_model,
    token_losses,
    tokenize_split,
)
from citetune.models import load_base, load_tokenizer
from citetune.params import default_params
from citetune.training import build_trainer, load_split, train_adapter


@pytest.fixture(scope="module")
def train_ds(sft_dir):
    return load_split(sft_dir / "train.jsonl")[0]


@pytest.mark.parametrize("max_length", [448, 200])
def test_examples_and_batches_are_those_trl_trains_on(tiny_base, train_ds, tmp_path, max_length):
    """The same input_ids and labels as SFTTrainer's prepared dataset, cut and dropped alike, and one
    collated batch equal to its collator's."""
    params = default_params("train", quantization="none", batch_size=4, max_length=max_length)
    trainer = build_trainer(params, train_ds, None, tiny_base, tmp_path, device="cpu")
    prepared = [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in trainer.train_dataset]
    ours = tokenize_split(trainer.processing_class, train_ds, max_length)
    assert ours == prepared
    if max_length == 200:  # answers cut short; retrieval prompts fill the window: TRL drops them, so does the loop
        assert len(ours) < len(train_ds)
    theirs = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    batch = collate(ours[:4], trainer.processing_class.pad_token_id)
    for key in ("input_ids", "labels", "attention_mask"):
        assert torch.equal(batch[key], theirs[key]), key
    assert (batch["labels"] != -100).any() and (batch["labels"] == -100).any()
    # ... and the loss on it is the one SFTTrainer computes.
    with torch.no_grad():
        loss_sum, n_valid, _ = token_losses(trainer.model, batch)
        assert torch.allclose(loss_sum / n_valid, trainer.compute_loss(trainer.model, dict(theirs)), atol=1e-5)


def _grads_seen_by_the_optimizer(loop: ManualLoop) -> list[torch.Tensor]:
    seen = []
    loop.optimizer.register_step_pre_hook(lambda opt, args, kwargs: seen.append(
        torch.cat([p.grad.flatten().clone() for p in loop.trainable])))
    return seen


def _loop(tiny_base, **overrides) -> tuple[ManualLoop, object]:
    params = default_params("train", quantization="none", lora_r=8, lora_alpha=16, **overrides)
    model, tokenizer = load_model(params, tiny_base, "cpu")
    return ManualLoop(params, model, tokenizer, "cpu", total_steps=10), tokenizer


def test_gradients_are_clipped_to_max_grad_norm(tiny_base, train_ds):
    examples = None
    norms = {}
    for max_grad_norm in (0.0, 1e-3):
        loop, tok = _loop(tiny_base, max_grad_norm=max_grad_norm)
        examples = examples or tokenize_split(tok, train_ds, 448)[:4]
        seen = _grads_seen_by_the_optimizer(loop)
        out = loop.step([examples])
        norms[max_grad_norm] = (out["grad_norm"], float(seen[0].norm()))
    unclipped, clipped = norms[0.0], norms[1e-3]
    assert unclipped[0] == pytest.approx(unclipped[1], rel=1e-4) and unclipped[1] > 1e-2  # 0: left alone
    assert clipped[0] == pytest.approx(unclipped[0], rel=1e-4)  # the norm reported is the one before clipping
    assert clipped[1] == pytest.approx(1e-3, rel=1e-3)


def test_accumulating_micro_batches_equals_one_bigger_batch(tiny_base, train_ds):
    """Two micro-batches of 4 give the loss and gradients of one batch of 8: the loss is divided by the
    answer tokens of all 8, as the Trainer divides it."""
    results = []
    for micro in (8, 4):
        loop, tok = _loop(tiny_base, batch_size=micro, gradient_accumulation_steps=8 // micro)
        examples = tokenize_split(tok, train_ds, 448)[:8]
        seen = _grads_seen_by_the_optimizer(loop)
        out = loop.step([examples[i:i + micro] for i in range(0, 8, micro)])
        results.append((out["loss"], seen[0]))
    (loss8, grad8), (loss4x2, grad4x2) = results
    assert loss4x2 == pytest.approx(loss8, rel=1e-5)
    assert grad8.norm() > 0 and torch.allclose(grad4x2, grad8, rtol=1e-4, atol=1e-7)


@pytest.mark.slow
def test_manual_loop_trains_a_qlora_adapter_like_the_trl_path(tiny_base, sft_dir, trained_adapter, tmp_path):
    """loop: manual on the 4-bit base: the TRL stage's metrics keys and curves, the loss falls, the adapter
    reloads and generates."""
    from peft import PeftModel

    params = default_params("train", loop="manual", quantization="4bit", epochs=6, batch_size=4,
                            gradient_accumulation_steps=2, learning_rate=0.01, max_length=448,
                            lora_r=16, lora_alpha=32)
    live = tmp_path / "live"
    metrics = train_adapter(params, sft_dir / "train.jsonl", sft_dir / "validation.jsonl", tiny_base,
                            tmp_path / "adapter", live_dir=live, device="cpu")
    trl_metrics = json.loads(trained_adapter["--metrics"].read_text())
    assert metrics.keys() == trl_metrics.keys()
    assert metrics["steps"] == 6 * -(-metrics["examples"] // 8) and metrics["epochs"] == pytest.approx(6.0)
    assert metrics["quantization"] == "4bit" and 0 < metrics["trainable_params"] < metrics["total_params"]
    assert metrics["eval_loss"] is not None

    # The TRL path's curves, at the optimizer's steps; evaluation every steps // 10.
    plots = live / "plots" / "metrics"
    for name in ("train/loss", "train/learning_rate", "train/token_accuracy", "eval/loss", "eval/token_accuracy"):
        assert (plots / f"{name}.tsv").exists(), name
    rows = [r.split("\t") for r in (plots / "train" / "loss.tsv").read_text().splitlines()[1:]]
    assert [int(s) for s, _ in rows] == list(range(1, metrics["steps"] + 1))
    losses = [float(x) for _, x in rows]
    epoch = len(losses) // 6  # batches of either mode differ in loss: compare whole epochs
    assert sum(losses[-epoch:]) < 0.85 * sum(losses[:epoch]), losses
    rates = [float(r.split("\t")[1]) for r in (plots / "train" / "learning_rate.tsv").read_text().splitlines()[1:]]
    assert rates[0] == 0.0 and max(rates) == pytest.approx(0.01) and rates[-1] < rates[len(rates) // 2]
    eval_steps = [int(r.split("\t")[0]) for r in (plots / "eval" / "loss.tsv").read_text().splitlines()[1:]]
    every = max(1, metrics["steps"] // 10)
    assert eval_steps == [s for s in range(1, metrics["steps"] + 1) if s % every == 0]

    adapter = tmp_path / "adapter"
    assert json.loads((adapter / "citetune_modes.json").read_text()) == ["closed_book", "retrieval"]
    model = PeftModel.from_pretrained(load_base(tiny_base, "4bit", "cpu"), str(adapter))
    tok = load_tokenizer(adapter)
    enc = tok.apply_chat_template([{"role": "user", "content": "Which work?"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    with torch.no_grad():
        assert model.generate(**enc, max_new_tokens=4, do_sample=False).shape[1] > enc["input_ids"].shape[1]
