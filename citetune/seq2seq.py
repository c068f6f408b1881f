"""Fine-tuning an encoder-decoder (T5; LED for long inputs) on the same SFT set (train.task: seq2seq), with
transformers' Seq2SeqTrainer and DataCollatorForSeq2Seq: a LoRA adapter (train.peft: lora) or every weight
(train.peft: full).

The encoder reads the system prompt and the user's turn as plain text (no chat template); the target is the
assistant's answer followed by the model's eos, so that the decoder learns to stop where generation stops.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from pathlib import Path

import torch

from citetune.chat import encoder_prompt
from citetune.hub import split_records
from citetune.io import atomic_dir, write_json
from citetune.models import (
    adapter_card,
    base_reference,
    load_base,
    load_tokenizer,
    pick_device,
)
from citetune.params import TrainParams
from citetune.training import (
    TRAINED_MODES,
    DVCLiveLosses,
    _fit_qlora_to_cpu,
    load_split,
)

log = logging.getLogger(__name__)


def tokenize(tokenizer, max_length: int):
    """The map from a prompt/completion row to the encoder's input ids and the decoder's labels."""
    eos = tokenizer.eos_token_id

    def encode(row: dict) -> dict:
        source = tokenizer(encoder_prompt(row["prompt"]), truncation=True, max_length=max_length)
        # The answer's own tokens, no bos a tokenizer might add, then eos: the decoder starts from its
        # decoder_start_token_id and must end exactly where generation stops.
        target = tokenizer(row["completion"][-1]["content"], add_special_tokens=False)["input_ids"]
        return {"input_ids": source["input_ids"], "attention_mask": source["attention_mask"],
                "labels": (target + [eos])[:max_length]}

    return encode


def overlong(tokenizer, dataset, max_length: int) -> tuple[int, int]:
    """(examples whose prompt or answer is longer than max_length tokens, the longest length)."""
    lengths = [max(len(tokenizer(encoder_prompt(row["prompt"]))["input_ids"]),
                   len(tokenizer(row["completion"][-1]["content"], add_special_tokens=False)["input_ids"]) + 1)
               for row in dataset]
    return sum(n > max_length for n in lengths), max(lengths, default=0)


def lora_config(params: TrainParams):
    from peft import LoraConfig

    return LoraConfig(r=params.lora_r, lora_alpha=params.lora_alpha, lora_dropout=params.lora_dropout,
                      target_modules=params.target_modules, bias="none", task_type="SEQ_2_SEQ_LM")


def training_args(params: TrainParams, output_dir: str | Path, device: str, has_eval: bool, n_train: int,
                  max_steps: int = -1, logging_steps: int | None = None):
    from transformers import Seq2SeqTrainingArguments

    steps_per_epoch = math.ceil(n_train / (params.batch_size * params.gradient_accumulation_steps))
    total = max_steps if max_steps > 0 else math.ceil(steps_per_epoch * params.epochs)
    return Seq2SeqTrainingArguments(
        output_dir=str(output_dir), num_train_epochs=params.epochs, max_steps=max_steps,
        learning_rate=params.learning_rate, lr_scheduler_type="linear", warmup_steps=0.05,
        per_device_train_batch_size=params.batch_size, per_device_eval_batch_size=params.batch_size,
        gradient_accumulation_steps=params.gradient_accumulation_steps, seed=params.seed, data_seed=params.seed,
        bf16=device == "cuda" and torch.cuda.is_bf16_supported(), use_cpu=device == "cpu",
        eval_strategy="steps" if has_eval else "no", eval_steps=max(1, total // 10),
        logging_steps=logging_steps or max(1, total // 50), logging_first_step=True, save_strategy="no",
        report_to="none", dataloader_num_workers=0, train_sampling_strategy="group_by_length",
        disable_tqdm=False)


def build_trainer(params: TrainParams, train_ds, eval_ds, base_dir: str | Path, output_dir: str | Path,
                  device: str | None = None, live_dir: str | Path | None = None, max_steps: int = -1,
                  logging_steps: int | None = None):
    """Load the encoder-decoder base (4-bit for QLoRA), wrap it with LoRA unless peft: full, and return a
    ready Seq2SeqTrainer on the tokenized splits."""
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer

    device = device or pick_device()
    model = load_base(base_dir, params.quantization, device)
    tokenizer = load_tokenizer(base_dir)
    collator = DataCollatorForSeq2Seq(tokenizer, model=model)
    if params.quantization == "4bit":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=device == "cuda")
    if params.peft == "lora":
        model = get_peft_model(model, lora_config(params))
    encode = tokenize(tokenizer, params.max_length)
    train_ds, eval_ds = (ds.map(encode, remove_columns=ds.column_names) if ds is not None else None
                         for ds in (train_ds, eval_ds))
    args = training_args(params, output_dir, device, eval_ds is not None, len(train_ds), max_steps, logging_steps)
    callbacks = [DVCLiveLosses(live_dir)] if live_dir is not None else []
    trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                             data_collator=collator, processing_class=tokenizer, callbacks=callbacks)
    if params.quantization == "4bit" and device == "cpu":
        _fit_qlora_to_cpu(trainer.model)
    return trainer


def full_model_card(base: str, revision: str | None, modes: list[str]) -> str:
    return (f"# citetune model\n\n{base} (revision {revision or 'as saved'}) fine-tuned in full by citetune's train "
            f"stage on modes: {', '.join(modes)}. Load it with `AutoModelForSeq2SeqLM.from_pretrained`; the "
            "prompt is the system prompt and the question as plain text.\n")


def parameter_counts(model) -> tuple[int, int]:
    if hasattr(model, "get_nb_trainable_parameters"):
        return model.get_nb_trainable_parameters()
    return (sum(p.numel() for p in model.parameters() if p.requires_grad),
            sum(p.numel() for p in model.parameters()))


def train_seq2seq(params: TrainParams, train_path: str | Path, validation_path: str | Path,
                  base_dir: str | Path, adapter_dir: str | Path, live_dir: str | Path | None = "dvclive/train",
                  device: str | None = None, max_steps: int = -1, logging_steps: int | None = None) -> dict:
    """training.train_adapter for an encoder-decoder: the same arguments, outputs and metrics. With peft: full,
    adapter_dir holds the whole fine-tuned model in place of an adapter."""
    device = device or pick_device()
    train_ds, skipped = load_split(train_path, dataset=params.dataset)
    eval_ds, skipped_eval = load_split(validation_path, required=False, dataset=params.dataset)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="citetune-train-") as scratch:
        trainer = build_trainer(params, train_ds, eval_ds, base_dir, scratch, device, live_dir,
                                max_steps, logging_steps)
        cut, longest = overlong(trainer.processing_class, train_ds, params.max_length)
        if cut:
            log.warning("%d of %d training examples have a prompt or answer longer than train.max_length (%d "
                        "tokens; the longest has %d): they are cut short. Raise train.max_length to %d or more",
                        cut, len(train_ds), params.max_length, longest, longest)
        log.info("training an encoder-decoder (%s) on %d examples (%d validation), %s, %s", params.peft,
                 len(train_ds), len(eval_ds) if eval_ds is not None else 0, device, params.quantization)
        result = trainer.train()
        evals = [h for h in trainer.state.log_history if "eval_loss" in h]
        final_eval = {}
        if eval_ds is not None:
            final_eval = evals[-1] if evals and evals[-1]["step"] == trainer.state.global_step else trainer.evaluate()
        for cb in trainer.callback_handler.callbacks:
            if isinstance(cb, DVCLiveLosses):
                cb.close()
        base_name, base_revision = base_reference(base_dir)
        if params.peft == "lora":  # the adapter names its base so that it loads from anywhere
            adapter_config = trainer.model.peft_config["default"]
            adapter_config.base_model_name_or_path, adapter_config.revision = base_name, base_revision
        modes = sorted({r.get("mode", "closed_book") for r in split_records(train_path, params.dataset)
                        if isinstance(r, dict)})
        with atomic_dir(adapter_dir) as tmp:
            trainer.model.save_pretrained(tmp)
            trainer.processing_class.save_pretrained(tmp)
            write_json(tmp / TRAINED_MODES, modes)
            card = (adapter_card(base_name, base_revision, modes, "AutoPeftModelForSeq2SeqLM")
                    if params.peft == "lora" else full_model_card(base_name, base_revision, modes))
            (tmp / "README.md").write_text(card, encoding="utf-8")
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    trainable, total = parameter_counts(trainer.model)
    return {
        "train_loss_first": losses[0] if losses else None,
        "train_loss_final": losses[-1] if losses else None,
        "train_loss_mean": result.training_loss,
        "eval_loss": final_eval.get("eval_loss"),
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "examples": len(train_ds),
        "examples_over_max_length": cut,
        "seconds": round(time.monotonic() - start, 1),
        "trainable_params": trainable,
        "total_params": total,
        "quantization": params.quantization,
        "device": device,
        "skipped_records": skipped + skipped_eval,
    }
