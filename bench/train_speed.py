"""Training speed, with and without 4-bit quantization (QLoRA vs LoRA) and packing.

Trains a few steps on SFT records of the sample corpus with the train params of params.yaml, on the
tiny base built in a temp dir or on --base-dir (a hub snapshot, models/base), and prints seconds/step,
tokens/s and, on a GPU, model FLOPs utilisation: 6 x parameters x tokens/s (the PaLM convention, 4-bit
weights counted unpacked) over the GPU's dense bf16 peak (looked up from its name, or --peak-tflops,
which also gives it on a CPU). The first steps are warm-up.

    .venv/bin/python -m bench.train_speed [--steps 12] [--warmup 2] [--pretrain-epochs 0]
    .venv/bin/python -m bench.train_speed --base-dir models/base --device cuda --packing
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
from citetune.training import build_trainer, load_split, parameter_counts


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


# Dense bf16 peak TFLOP/s by GPU name (vendor data sheets, without sparsity).
PEAK_TFLOPS = {"H200": 989, "H100": 989, "A100": 312, "L40S": 362, "L4": 121, "A10G": 125, "A10": 125,
               "4090": 165, "3090": 71, "V100": 125, "T4": 65}


def peak_tflops(given: float | None, device: str) -> float | None:
    """The peak to divide by: the one given (a CPU's too), else the GPU's by its name."""
    if given or device != "cuda":
        return given
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def measure(params, train_ds, base: Path, quantization: str, steps: int, warmup: int, device: str,
            packing: bool) -> dict:
    params = params.model_copy(update={"quantization": quantization, "packing": packing})
    with tempfile.TemporaryDirectory() as out:
        trainer = build_trainer(params, train_ds, None, base, out, device=device, max_steps=steps + warmup)
        trainer.args.include_num_input_tokens_seen = "non_padding"
        trainer.args.disable_tqdm = True
        timer = StepTimer(warmup)
        trainer.add_callback(timer)
        trainer.train()
        settings = {"bf16": trainer.args.bf16, "gradient_checkpointing": trainer.args.gradient_checkpointing,
                    "optim": str(trainer.args.optim.value)}
        n_params = parameter_counts(trainer.model)[1]  # 4-bit weights counted unpacked, as PEFT counts them
    sec = sum(timer.times) / len(timer.times)
    return {"quantization": quantization, "packing": packing, "s_per_step": sec, "parameters": n_params,
            "tokens_per_s": sum(timer.tokens) / sum(timer.times), **settings}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--pretrain-epochs", type=int, default=0)
    ap.add_argument("--base-dir", help="a model folder (default: the tiny model, built here)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--packing", action="store_true", help="also measure with train.packing")
    ap.add_argument("--peak-tflops", type=float,
                    help="the device's dense peak, for MFU (default: a GPU's bf16 peak by its name; none on CPU)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tiny, train = load_params("base", args.params).tiny, load_params("train", args.params)
    peak = peak_tflops(args.peak_tflops, args.device)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = Path(args.base_dir) if args.base_dir else tmp / "base"
        if not args.base_dir:
            build_tiny_base(tiny, base, pretrain_epochs=args.pretrain_epochs)
        write_sft(tmp / "sft")
        train_ds, _ = load_split(tmp / "sft" / "train.jsonl")
        where = torch.cuda.get_device_name() if args.device == "cuda" else f"cpu, {torch.get_num_threads()} threads"
        print(f"base {args.base_dir or f'tiny (hidden {tiny.hidden_size}, {tiny.num_layers} layers)'}; batch "
              f"{train.batch_size}, LoRA r {train.lora_r} on {train.target_modules}; {where}")
        for q in ("4bit", "none"):
            for packing in (False, True) if args.packing else (False,):
                r = measure(train, train_ds, base, q, args.steps, args.warmup, args.device, packing)
                mfu = (f", MFU {6 * r['parameters'] * r['tokens_per_s'] / (peak * 1e12):.1%}" if peak else "")
                print(f"{q:>5}{' packed' if packing else '':7}: {r['s_per_step']:.3f} s/step, "
                      f"{r['tokens_per_s']:.0f} tokens/s{mfu} (bf16 {r['bf16']}, gradient checkpointing "
                      f"{r['gradient_checkpointing']}, {r['optim']})")


if __name__ == "__main__":
    main()
