"""Training speed of the tiny model, with and without 4-bit quantization (QLoRA vs LoRA).

Builds the tiny base (params.yaml base.tiny) and SFT records from the sample corpus in a temp dir,
trains a few steps with the train params of params.yaml, and prints seconds/step and tokens/s
(the first steps are warm-up and not counted).

    .venv/bin/python -m bench.train_speed [--steps 12] [--warmup 2] [--pretrain-epochs 0]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from citetune.params import load_params
from citetune.testing.sft_sample import write_sft
from citetune.tiny_model import build_tiny_base
from citetune.training import build_trainer, load_split


class StepTimer(TrainerCallback):
    """Wall time and tokens of each optimizer step after the warm-up ones."""

    def __init__(self, warmup: int):
        self.warmup, self.times, self.tokens, self._t = warmup, [], [], None
        self._seen = 0

    def on_step_begin(self, args, state, control, **kw):
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        if state.global_step > self.warmup:
            self.times.append(time.perf_counter() - self._t)
            self.tokens.append(state.num_input_tokens_seen - self._seen)
        self._seen = state.num_input_tokens_seen


def measure(params, train_ds, base: Path, quantization: str, steps: int, warmup: int) -> dict:
    params = params.model_copy(update={"quantization": quantization})
    with tempfile.TemporaryDirectory() as out:
        trainer = build_trainer(params, train_ds, None, base, out, device="cpu", max_steps=steps + warmup)
        trainer.args.include_num_input_tokens_seen = "non_padding"
        trainer.args.disable_tqdm = True
        timer = StepTimer(warmup)
        trainer.add_callback(timer)
        trainer.train()
    sec = sum(timer.times) / len(timer.times)
    return {"quantization": quantization, "s_per_step": sec, "tokens_per_s": sum(timer.tokens) / sum(timer.times)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--pretrain-epochs", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tiny, train = load_params("base", args.params).tiny, load_params("train", args.params)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build_tiny_base(tiny, tmp / "base", pretrain_epochs=args.pretrain_epochs)
        write_sft(tmp / "sft")
        train_ds, _ = load_split(tmp / "sft" / "train.jsonl")
        print(f"tiny model: hidden {tiny.hidden_size}, {tiny.num_layers} layers; batch {train.batch_size}, "
              f"LoRA r {train.lora_r} on {train.target_modules}; {torch.get_num_threads()} threads")
        for q in ("4bit", "none"):
            r = measure(train, train_ds, tmp / "base", q, args.steps, args.warmup)
            print(f"{q:>5}: {r['s_per_step']:.3f} s/step, {r['tokens_per_s']:.0f} tokens/s")


if __name__ == "__main__":
    main()
