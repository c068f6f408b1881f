"""Fine-tuning an encoder-decoder (T5; LED for long inputs) on the same SFT set (train.task: seq2seq), with
transformers' Seq2SeqTrainer and DataCollatorForSeq2Seq: a LoRA adapter (train.peft: lora) or every weight
(train.peft: full).

The encoder reads the system prompt and the user's turn as plain text (no chat template); the target is the
assistant's answer followed by the model's eos, so that the decoder learns to stop where generation stops.
"""

from __future__ import annotations

import logging
from pathlib import Path

from citetune.chat import encoder_prompt
from citetune.checkpoints import step_of
from citetune.models import (
    load_base,
    load_tokenizer,
    pick_device,
)
from citetune.params import TrainParams
from citetune.training import (
    DVCLiveLosses,
    Fitted,
    ReplayableOrder,
    _fit_qlora_to_cpu,
    is_main_process,
    lora_config,
    run_trainer,
    trainer_arguments,
    warn_if_overlong,
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


def seq2seq_length(tokenizer, row: dict) -> int:
    """Tokens of a prompt/completion pair as an encoder-decoder reads it: the longer of input and target."""
    return max(len(tokenizer(encoder_prompt(row["prompt"]))["input_ids"]),
               len(tokenizer(row["completion"][-1]["content"], add_special_tokens=False)["input_ids"]) + 1)


def training_args(params: TrainParams, output_dir: str | Path, device: str, has_eval: bool, n_train: int,
                  max_steps: int = -1, logging_steps: int | None = None, checkpoints: bool = False):
    from transformers import Seq2SeqTrainingArguments

    return Seq2SeqTrainingArguments(**trainer_arguments(params, output_dir, device, has_eval, n_train, max_steps,
                                                        logging_steps, checkpoints))


def build_trainer(params: TrainParams, train_ds, eval_ds, base_dir: str | Path, output_dir: str | Path,
                  device: str | None = None, live_dir: str | Path | None = None, max_steps: int = -1,
                  logging_steps: int | None = None, checkpoints: bool = False, resume_step: int | None = None):
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
        model = get_peft_model(model, lora_config(params, "SEQ_2_SEQ_LM"))
    encode = tokenize(tokenizer, params.max_length)
    train_ds, eval_ds = (ds.map(encode, remove_columns=ds.column_names) if ds is not None else None
                         for ds in (train_ds, eval_ds))
    args = training_args(params, output_dir, device, eval_ds is not None, len(train_ds), max_steps, logging_steps,
                         checkpoints)
    callbacks = [DVCLiveLosses(live_dir, resume_step)] if live_dir is not None and is_main_process() else []
    class ReplayableSeq2SeqTrainer(ReplayableOrder, Seq2SeqTrainer):
        pass

    trainer = ReplayableSeq2SeqTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                             data_collator=collator, processing_class=tokenizer, callbacks=callbacks)
    if params.quantization == "4bit" and device == "cpu":
        _fit_qlora_to_cpu(trainer.model)
    return trainer


def full_model_card(base: str, revision: str | None, modes: list[str]) -> str:
    return (f"# citetune model\n\n{base} (revision {revision or 'as saved'}) fine-tuned in full by citetune's train "
            f"stage on modes: {', '.join(modes)}. Load it with `AutoModelForSeq2SeqLM.from_pretrained`; the "
            "prompt is the system prompt and the question as plain text.\n")


def fit_seq2seq(params: TrainParams, train_ds, eval_ds, base_dir: str | Path, output_dir: str | Path, device: str,
                live_dir: str | Path | None, max_steps: int = -1, logging_steps: int | None = None,
                checkpoints: bool = False, resume: Path | None = None) -> Fitted:
    """training.fit_trl for an encoder-decoder: Seq2SeqTrainer, checkpoints and resuming alike."""
    trainer = build_trainer(params, train_ds, eval_ds, base_dir, output_dir, device, live_dir, max_steps,
                            logging_steps, checkpoints, step_of(resume) if resume is not None else None)
    cut = warn_if_overlong(trainer.processing_class, train_ds, params.max_length, seq2seq_length)
    return run_trainer(trainer, eval_ds, resume, cut)
