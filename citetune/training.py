"""Supervised fine-tuning with TRL's SFTTrainer and a PEFT LoRA adapter, on a 4-bit base (QLoRA) or not;
train.loop: manual runs the same fine-tuning as a plain PyTorch loop (manual_loop.py).

Each SFT record becomes a conversational prompt/completion pair (prompt: system + user, completion:
the assistant's answer), so TRL computes the loss on the answer only.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from transformers import TrainerCallback

from citetune.errors import StageError
from citetune.io import atomic_dir, read_jsonl, write_json
from citetune.models import load_base, load_tokenizer, pick_device
from citetune.params import TrainParams

log = logging.getLogger(__name__)
TRAINED_MODES = "citetune_modes.json"
WARMUP_RATIO = 0.05  # of the optimizer steps, for the learning rate's linear warm-up


def to_prompt_completion(record: dict) -> dict:
    """{'messages': [system, user, assistant]} -> {'prompt': [system, user], 'completion': [assistant]}."""
    messages = record.get("messages") or []
    if not messages or messages[-1].get("role") != "assistant" or not messages[-1].get("content"):
        raise ValueError(f"record {record.get('id', '?')}: messages must end with the assistant's answer")
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def load_split(path: str | Path, required: bool = True):
    """(Dataset of prompt/completion pairs, skipped records with their reason) from an SFT jsonl file.

    The dataset is None when the split is optional (validation) and absent or empty.
    """
    from datasets import Dataset

    path = Path(path)
    if not path.exists():
        if required:
            raise StageError(f"{path} not found: run the qa stage first (dvc repro qa)")
        return None, []
    try:
        records = read_jsonl(path)
    except ValueError as e:
        raise StageError(f"{e}: rerun the qa stage to rewrite it") from e
    rows, skipped = [], []
    for rec in records:
        try:
            rows.append(to_prompt_completion(rec))
        except (ValueError, AttributeError, TypeError) as e:
            skipped.append({"file": str(path), "id": rec.get("id") if isinstance(rec, dict) else None,
                            "reason": str(e)})
            log.warning("%s: skipping a record: %s", path, e)
    if not rows and required:
        raise StageError(f"{path} holds no usable SFT records ({len(skipped)} malformed): check the qa stage's output")
    return (Dataset.from_list(rows) if rows else None), skipped


def lora_config(params: TrainParams):
    from peft import LoraConfig

    return LoraConfig(
        r=params.lora_r, lora_alpha=params.lora_alpha, lora_dropout=params.lora_dropout,
        target_modules=params.target_modules, bias="none", task_type="CAUSAL_LM",
    )


class StepPlan(NamedTuple):
    """Optimizer steps in all, and every how many of them the run evaluates and logs."""
    total: int
    eval_steps: int
    logging_steps: int


def step_plan(params: TrainParams, n_train: int, max_steps: int = -1, logging_steps: int | None = None) -> StepPlan:
    steps_per_epoch = math.ceil(n_train / (params.batch_size * params.gradient_accumulation_steps))
    total = max_steps if max_steps > 0 else math.ceil(steps_per_epoch * params.epochs)
    return StepPlan(total, max(1, total // 10), logging_steps or max(1, total // 50))


def sft_config(params: TrainParams, output_dir: str | Path, device: str, has_eval: bool, n_train: int,
               max_steps: int = -1, logging_steps: int | None = None):
    from trl import SFTConfig

    plan = step_plan(params, n_train, max_steps, logging_steps)
    return SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=params.epochs,
        max_steps=max_steps,
        learning_rate=params.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=WARMUP_RATIO,
        per_device_train_batch_size=params.batch_size,
        per_device_eval_batch_size=params.batch_size,
        gradient_accumulation_steps=params.gradient_accumulation_steps,
        max_grad_norm=params.max_grad_norm,
        max_length=params.max_length,
        completion_only_loss=True,
        seed=params.seed,
        data_seed=params.seed,
        # Checkpointing activations only pays off for models that do not fit; it slows small ones down.
        gradient_checkpointing=device == "cuda",
        bf16=device == "cuda" and torch.cuda.is_bf16_supported(),
        use_cpu=device == "cpu",
        eval_strategy="steps" if has_eval else "no",
        eval_steps=plan.eval_steps,
        logging_steps=plan.logging_steps,
        logging_first_step=True,
        save_strategy="no",
        report_to="none",
        dataloader_num_workers=0,
        train_sampling_strategy="group_by_length",  # less padding per batch: faster on CPU
        disable_tqdm=False,
    )


class DVCLiveLosses(TrainerCallback):
    """Train/eval loss and token accuracy to DVCLive, at the trainer's global step.

    The stock DVCLiveCallback logs every value the trainer reports (runtimes, FLOPs, ...) on its own
    log counter; these are the curves worth a plot, on the x axis a reader expects.
    """

    SERIES = {"loss": "train/loss", "mean_token_accuracy": "train/token_accuracy",
              "learning_rate": "train/learning_rate",
              "eval_loss": "eval/loss", "eval_mean_token_accuracy": "eval/token_accuracy"}

    def __init__(self, live_dir: str | Path):
        from dvclive import Live

        # save_dvc_exp/dvcyaml off: dvc.yaml declares the plots itself and the run is already a DVC stage.
        self.live = Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=None)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero:
            self.log(state.global_step, logs or {})

    def log(self, step: int, logs: dict) -> None:
        """The values of `logs` (named as the Trainer names them) that make a curve, at optimizer step `step`."""
        self.live.step = step
        for key, name in self.SERIES.items():
            if isinstance(logs.get(key), (int, float)):
                self.live.log_metric(name, logs[key])

    def close(self) -> None:
        self.live.end()


def _fit_qlora_to_cpu(model) -> None:
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            # bitsandbytes repacks 4-bit weights for a CPU inference kernel the first time a layer runs
            # in eval mode (the evaluation steps); that kernel has no backward, so the training steps
            # after it would silently stop gradients at every frozen layer.
            module.support_avx512bf16_for_cpu = False
    for p in model.parameters():
        # TRL keeps QLoRA adapters in bfloat16 (the paper's GPU recipe); the CPU compute dtype is
        # float32, and float32 adapters train as fast and more precisely there.
        if p.requires_grad:
            p.data = p.data.float()


def build_trainer(params: TrainParams, train_ds, eval_ds, base_dir: str | Path, output_dir: str | Path,
                  device: str | None = None, live_dir: str | Path | None = None, max_steps: int = -1,
                  logging_steps: int | None = None):
    """Load the base (4-bit for QLoRA), wrap it with LoRA and return a ready SFTTrainer."""
    from peft import prepare_model_for_kbit_training
    from trl import SFTTrainer

    device = device or pick_device()
    model = load_base(base_dir, params.quantization, device)
    tokenizer = load_tokenizer(base_dir)
    quantized = params.quantization == "4bit"
    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=device == "cuda")
    args = sft_config(params, output_dir, device, eval_ds is not None, len(train_ds), max_steps, logging_steps)
    callbacks = [DVCLiveLosses(live_dir)] if live_dir is not None else []
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                         processing_class=tokenizer, peft_config=lora_config(params), callbacks=callbacks)
    if quantized and device == "cpu":
        _fit_qlora_to_cpu(trainer.model)
    return trainer


def trained_modes(adapter_dir: str | Path) -> list[str] | None:
    """The modes an adapter was trained on (None for an adapter saved without them)."""
    path = Path(adapter_dir) / TRAINED_MODES
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def overlong(tokenizer, dataset, max_length: int) -> tuple[int, int]:
    """(examples longer than max_length tokens, the longest length): truncation would cut their answers."""
    lengths = [len(tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=True,
                                                 return_dict=True)["input_ids"]) for row in dataset]
    return sum(n > max_length for n in lengths), max(lengths, default=0)


def warn_if_overlong(tokenizer, train_ds, max_length: int) -> int:
    """Warn about, and count, the training examples whose answers max_length cuts short."""
    cut, longest = overlong(tokenizer, train_ds, max_length)
    if cut:
        log.warning("%d of %d training examples are longer than train.max_length (%d tokens; the longest has "
                    "%d): their answers are cut short. Raise train.max_length to %d or more", cut,
                    len(train_ds), max_length, longest, longest)
    return cut


@dataclass
class Fitted:
    """A finished run of either loop: the model with its adapter, and what the run logged (Trainer's key names)."""
    model: Any
    tokenizer: Any
    log_history: list[dict]
    global_step: int
    epoch: float
    training_loss: float  # the mean of every optimizer step's loss
    final_eval: dict  # the final adapter's eval_loss ({} without a validation split)
    examples_over_max_length: int


def fit_trl(params: TrainParams, train_ds, eval_ds, base_dir: str | Path, scratch: str | Path, device: str,
            live_dir: str | Path | None, max_steps: int = -1, logging_steps: int | None = None) -> Fitted:
    trainer = build_trainer(params, train_ds, eval_ds, base_dir, scratch, device, live_dir, max_steps, logging_steps)
    cut = warn_if_overlong(trainer.processing_class, train_ds, params.max_length)
    result = trainer.train()
    evals = [h for h in trainer.state.log_history if "eval_loss" in h]
    final_eval = {}
    if eval_ds is not None:  # the loss of the final adapter, evaluated once
        final_eval = evals[-1] if evals and evals[-1]["step"] == trainer.state.global_step else trainer.evaluate()
    for cb in trainer.callback_handler.callbacks:
        if isinstance(cb, DVCLiveLosses):
            cb.close()
    return Fitted(trainer.model, trainer.processing_class, trainer.state.log_history, trainer.state.global_step,
                  trainer.state.epoch, result.training_loss, final_eval, cut)


def train_adapter(params: TrainParams, train_path: str | Path, validation_path: str | Path,
                  base_dir: str | Path, adapter_dir: str | Path, live_dir: str | Path | None = "dvclive/train",
                  device: str | None = None, max_steps: int = -1, logging_steps: int | None = None) -> dict:
    """Fine-tune a LoRA adapter on the SFT split; save adapter + tokenizer to adapter_dir; return metrics."""
    from citetune.manual_loop import fit_manual

    device = device or pick_device()
    train_ds, skipped = load_split(train_path)
    eval_ds, skipped_eval = load_split(validation_path, required=False)
    fit = fit_manual if params.loop == "manual" else fit_trl
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="citetune-train-") as scratch:
        log.info("training on %d examples (%d validation), %s, %s, loop %s", len(train_ds),
                 len(eval_ds) if eval_ds is not None else 0, device, params.quantization, params.loop)
        run = fit(params, train_ds, eval_ds, base_dir, scratch, device, live_dir, max_steps, logging_steps)
        with atomic_dir(adapter_dir) as tmp:
            run.model.save_pretrained(tmp)
            run.tokenizer.save_pretrained(tmp)
            # The modes it was taught to answer in (qa.modes when it was trained): ask answers in one of them.
            write_json(tmp / TRAINED_MODES, sorted({r.get("mode", "closed_book") for r in read_jsonl(train_path)
                                                    if isinstance(r, dict)}))
    seconds = time.monotonic() - start
    losses = [h["loss"] for h in run.log_history if "loss" in h]
    trainable, total = run.model.get_nb_trainable_parameters()
    return {
        "train_loss_first": losses[0] if losses else None,
        "train_loss_final": losses[-1] if losses else None,
        "train_loss_mean": run.training_loss,
        "eval_loss": run.final_eval.get("eval_loss"),
        "steps": run.global_step,
        "epochs": run.epoch,
        "examples": len(train_ds),
        "examples_over_max_length": run.examples_over_max_length,
        "seconds": round(seconds, 1),
        "trainable_params": trainable,
        "total_params": total,
        "quantization": params.quantization,
        "device": device,
        "skipped_records": skipped + skipped_eval,
    }
