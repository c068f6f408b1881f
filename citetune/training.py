"""Supervised fine-tuning with TRL's SFTTrainer and a PEFT LoRA adapter, on a 4-bit base (QLoRA) or not;
train.loop: manual runs the same fine-tuning as a plain PyTorch loop (manual_loop.py).

Each SFT record becomes a conversational prompt/completion pair (prompt: system + user, completion:
the assistant's answer), so TRL computes the loss on the answer only.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from transformers import TrainerCallback

from citetune.answers import ADAPTER_FORMAT, answer_format_of, parse_answer
from citetune.chat import fit_messages, takes_system
from citetune.checkpoints import finish, resume_point, run_fingerprint, step_of
from citetune.errors import StageError
from citetune.hub import split_records
from citetune.io import atomic_dir, write_json
from citetune.models import (
    adapter_card,
    base_reference,
    is_encoder_decoder,
    load_base,
    load_tokenizer,
    pick_device,
    require_base,
)
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


def load_split(path: str | Path, required: bool = True, dataset: str = ""):
    """(Dataset of prompt/completion pairs, skipped records with their reason) from an SFT jsonl file, or
    when it is absent from the split of the same name of `dataset` (train.dataset).

    The dataset is None when the split is optional (validation) and absent or empty.
    """
    from datasets import Dataset

    path = Path(path)
    if not path.exists() and not dataset:
        if required:
            raise StageError(f"{path} not found: run the qa stage first (dvc repro qa), or set train.dataset")
        return None, []
    try:
        records = split_records(path, dataset, required)
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


def lora_config(params: TrainParams, task_type: str = "CAUSAL_LM"):
    from peft import LoraConfig

    return LoraConfig(
        r=params.lora_r, lora_alpha=params.lora_alpha, lora_dropout=params.lora_dropout,
        target_modules=params.target_modules, bias="none", task_type=task_type,
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


def trainer_arguments(params: TrainParams, output_dir: str | Path, device: str, has_eval: bool, n_train: int,
                      max_steps: int = -1, logging_steps: int | None = None, checkpoints: bool = False) -> dict:
    """The TrainingArguments every Trainer-based path shares (TRL's SFT, seq2seq)."""
    plan = step_plan(params, n_train, max_steps, logging_steps)
    return dict(
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
        seed=params.seed,
        data_seed=params.seed,
        bf16=device == "cuda" and torch.cuda.is_bf16_supported(),
        use_cpu=device == "cpu",
        eval_strategy="steps" if has_eval else "no",
        eval_steps=plan.eval_steps,
        logging_steps=plan.logging_steps,
        logging_first_step=True,
        # Checkpoints (when output_dir outlives the run) let a killed run resume; the last two are kept, so a
        # kill while one is being written still leaves a whole one.
        save_strategy="steps" if checkpoints and params.save_steps > 0 else "no",
        save_steps=max(1, params.save_steps),
        save_total_limit=2,
        report_to="none",
        dataloader_num_workers=0,
        # Less padding per batch (faster on CPU); packed rows are all about max_length anyway.
        train_sampling_strategy="random" if params.packing else "group_by_length",
        disable_tqdm=False,
    )


def sft_config(params: TrainParams, output_dir: str | Path, device: str, has_eval: bool, n_train: int,
               max_steps: int = -1, logging_steps: int | None = None, checkpoints: bool = False):
    from trl import SFTConfig

    return SFTConfig(
        **trainer_arguments(params, output_dir, device, has_eval, n_train, max_steps, logging_steps, checkpoints),
        max_length=params.max_length,
        completion_only_loss=True,
        # Packing puts several examples in one row (best-fit); position ids keep them from attending to each other.
        packing=params.packing,
        # Checkpointing activations only pays off for models that do not fit; it slows small ones down.
        gradient_checkpointing=device == "cuda",
        # QLoRA on a GPU: the paged 8-bit optimiser keeps memory spikes off the GPU (the QLoRA paper's recipe).
        optim="paged_adamw_8bit" if params.quantization == "4bit" and device == "cuda" else "adamw_torch_fused",
    )


class DVCLiveLosses(TrainerCallback):
    """Train/eval loss and token accuracy to DVCLive, at the trainer's global step.

    The stock DVCLiveCallback logs every value the trainer reports (runtimes, FLOPs, ...) on its own
    log counter; these are the curves worth a plot, on the x axis a reader expects.
    """

    SERIES = {"loss": "train/loss", "mean_token_accuracy": "train/token_accuracy",
              "learning_rate": "train/learning_rate",
              "eval_loss": "eval/loss", "eval_mean_token_accuracy": "eval/token_accuracy"}

    def __init__(self, live_dir: str | Path, resume_step: int | None = None):
        from dvclive import Live

        # DVCLive empties its folder when it starts: it writes beside live_dir, which close() replaces whole,
        # so that a killed run leaves live_dir (git-tracked) as the last finished run wrote it.
        self.live_dir = Path(live_dir)
        self.work_dir = self.live_dir.with_name(f".{self.live_dir.name}.partial")
        if resume_step is None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        else:  # the curves go on from the checkpoint: points the killed run logged after it go
            import pandas as pd

            if not self.work_dir.exists() and self.live_dir.is_dir():
                shutil.copytree(self.live_dir, self.work_dir)
            for tsv in Path(self.work_dir, "plots", "metrics").rglob("*.tsv"):
                rows = pd.read_csv(tsv, sep="\t")
                rows[rows["step"] <= resume_step].to_csv(tsv, sep="\t", index=False)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        (self.work_dir / ".gitignore").write_text("*\n")  # never committed, not even by `dvc exp run`
        # save_dvc_exp/dvcyaml off: dvc.yaml declares the plots itself and the run is already a DVC stage.
        self.live = Live(dir=str(self.work_dir), save_dvc_exp=False, dvcyaml=None, resume=resume_step is not None)

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
        with atomic_dir(self.live_dir) as tmp:
            shutil.copytree(self.work_dir, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".gitignore"))
        shutil.rmtree(self.work_dir)


class ReplayableOrder:
    """Trainer mixin: batches grouped by length (less padding), in an order drawn from the seed and the epoch
    alone, so that a run resumed from a checkpoint sees the batches the killed run would have seen.

    The stock length-grouped sampler draws from the global RNG, whose state at a checkpoint is not the
    one its epoch began with."""

    def _get_train_sampler(self, train_dataset=None):
        sampler = super()._get_train_sampler(train_dataset)
        if type(sampler).__name__ == "LengthGroupedSampler":
            sampler = EpochSeededLengthSampler(sampler, self.args.seed)
        return sampler


class EpochSeededLengthSampler:
    def __init__(self, sampler, seed: int):
        self.sampler, self.seed = sampler, seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.generator = torch.Generator().manual_seed(self.seed + epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        return iter(self.sampler)


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
                  logging_steps: int | None = None, checkpoints: bool = False, resume_step: int | None = None):
    """Load the base (4-bit for QLoRA), wrap it with LoRA and return a ready SFTTrainer."""
    from peft import prepare_model_for_kbit_training
    from trl import SFTTrainer

    class ReplayableSFTTrainer(ReplayableOrder, SFTTrainer):
        pass

    device = device or pick_device()
    model = load_base(base_dir, params.quantization, device)
    tokenizer = load_tokenizer(base_dir)
    if not takes_system(tokenizer):  # Gemma, early Mistral: the system prompt goes in the user's turn
        train_ds, eval_ds = (ds.map(lambda row: {"prompt": fit_messages(tokenizer, row["prompt"])})
                             if ds is not None else None for ds in (train_ds, eval_ds))
    quantized = params.quantization == "4bit"
    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=device == "cuda")
    args = sft_config(params, output_dir, device, eval_ds is not None, len(train_ds), max_steps, logging_steps,
                      checkpoints)
    # Under accelerate launch every process trains; one writes the curves.
    callbacks = [DVCLiveLosses(live_dir, resume_step)] if live_dir is not None and is_main_process() else []
    trainer = ReplayableSFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                         processing_class=tokenizer, peft_config=lora_config(params), callbacks=callbacks)
    if quantized and device == "cpu":
        _fit_qlora_to_cpu(trainer.model)
    return trainer


def is_main_process() -> bool:
    """True in a plain run, and in the first process of an `accelerate launch` run."""
    from accelerate import PartialState

    return PartialState().is_main_process


def trained_modes(adapter_dir: str | Path) -> list[str] | None:
    """The modes an adapter was trained on (None for an adapter saved without them)."""
    path = Path(adapter_dir) / TRAINED_MODES
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def chat_length(tokenizer, row: dict) -> int:
    """Tokens of a prompt/completion pair as a causal model reads it: the whole conversation."""
    return len(tokenizer.apply_chat_template(fit_messages(tokenizer, row["prompt"] + row["completion"]),
                                             tokenize=True, return_dict=True)["input_ids"])


def overlong(tokenizer, dataset, max_length: int, length=chat_length) -> tuple[int, int]:
    """(examples longer than max_length tokens, the longest length): truncation would cut their answers."""
    lengths = [length(tokenizer, row) for row in dataset]
    return sum(n > max_length for n in lengths), max(lengths, default=0)


def warn_if_overlong(tokenizer, train_ds, max_length: int, length=chat_length) -> int:
    """Warn about, and count, the training examples whose answers max_length cuts short."""
    cut, longest = overlong(tokenizer, train_ds, max_length, length)
    if cut:
        log.warning("%d of %d training examples are longer than train.max_length (%d tokens; the longest has "
                    "%d): their answers are cut short. Raise train.max_length to %d or more", cut,
                    len(train_ds), max_length, longest, longest)
    return cut


def _structure(answer: str, answer_format: str) -> tuple[int, int, bool, bool]:
    """(lines of a text answer, works cited, abstained, malformed): what an answer says, whatever its
    titles' characters."""
    parsed = parse_answer(answer, answer_format=answer_format)
    lines = sum(bool(line.strip()) for line in answer.splitlines()) if answer_format == "text" else 0
    return lines, len(parsed.cited), parsed.abstained, parsed.malformed


def check_answers_writable(tokenizer, train_ds, answer_format: str = "text") -> int:
    """Count, and warn about, the answers the base's tokenizer cannot write as they are (a character its
    vocabulary lacks); refuse a tokenizer that changes what an answer says when read back (T5's, which
    has no line break and no braces): one work per line, or JSON, is the answer's structure, and a model
    that cannot write it could never give an answer that parses as taught."""
    lost, broken = [], []
    for row in train_ds:
        answer = row["completion"][0]["content"]
        written = tokenizer.decode(tokenizer.encode(answer, add_special_tokens=False), skip_special_tokens=True,
                                   clean_up_tokenization_spaces=False)
        if written.strip() != answer.strip():
            lost.append(answer)
            if _structure(written, answer_format) != _structure(answer, answer_format):
                broken.append((answer, written))
    if broken:
        answer, written = broken[0]
        raise StageError(f"the base's tokenizer cannot write {len(broken)} of {len(train_ds)} answers so that they "
                         f"read back the same (for one, {answer[:120]!r} is written {written[:120]!r}): the "
                         "answer's structure (one work per line, or JSON) needs characters its vocabulary lacks, "
                         "as T5's lacks line breaks and braces. Choose a base.model whose vocabulary writes them "
                         "(LED, BART and the causal families do)")
    if lost:
        log.warning("the base's tokenizer cannot write %d of %d answers exactly (for one: %r): the model learns "
                    "what it can write", len(lost), len(train_ds), lost[0][:80])
    return len(lost)


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
            live_dir: str | Path | None, max_steps: int = -1, logging_steps: int | None = None,
            checkpoints: bool = False, resume: Path | None = None) -> Fitted:
    """Train with TRL's SFTTrainer; with `checkpoints`, save them in `scratch` and resume from `resume`."""
    trainer = build_trainer(params, train_ds, eval_ds, base_dir, scratch, device, live_dir, max_steps, logging_steps,
                            checkpoints=checkpoints, resume_step=step_of(resume) if resume is not None else None)
    cut = warn_if_overlong(trainer.processing_class, train_ds, params.max_length)
    return run_trainer(trainer, eval_ds, resume, cut)


def run_trainer(trainer, eval_ds, resume: Path | None, cut: int) -> Fitted:
    """Train (resuming from `resume`), evaluate the final adapter once, close the curves."""
    if resume is not None:
        log.info("resuming from %s (a run on the same params, data and base was stopped there)", resume)
    result = trainer.train(resume_from_checkpoint=str(resume) if resume is not None else None)
    evals = [h for h in trainer.state.log_history if "eval_loss" in h]
    final_eval = {}
    if eval_ds is not None:  # the loss of the final adapter, evaluated once
        final_eval = evals[-1] if evals and evals[-1]["step"] == trainer.state.global_step else trainer.evaluate()
    for cb in trainer.callback_handler.callbacks:
        if isinstance(cb, DVCLiveLosses):
            cb.close()
    return Fitted(trainer.model, trainer.processing_class, trainer.state.log_history, trainer.state.global_step,
                  trainer.state.epoch, result.training_loss, final_eval, cut)


def model_card(model, base_name: str, base_revision: str | None, modes: list[str]) -> str:
    """The adapter's card, or for train.peft: full the whole model's."""
    if not hasattr(model, "peft_config"):
        from citetune.seq2seq import full_model_card

        return full_model_card(base_name, base_revision, modes)
    encoder_decoder = getattr(model.config, "is_encoder_decoder", False)
    return adapter_card(base_name, base_revision, modes,
                        "AutoPeftModelForSeq2SeqLM" if encoder_decoder else "AutoPeftModelForCausalLM")


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) parameters, of an adapter-wrapped model or a fully fine-tuned one."""
    if hasattr(model, "get_nb_trainable_parameters"):
        return model.get_nb_trainable_parameters()
    return (sum(p.numel() for p in model.parameters() if p.requires_grad),
            sum(p.numel() for p in model.parameters()))


def train_adapter(params: TrainParams, train_path: str | Path, validation_path: str | Path,
                  base_dir: str | Path, adapter_dir: str | Path, live_dir: str | Path | None = "dvclive/train",
                  device: str | None = None, max_steps: int = -1, logging_steps: int | None = None,
                  checkpoint_dir: str | Path | None = None) -> dict:
    """Fine-tune a LoRA adapter on the SFT split; save adapter + tokenizer to adapter_dir; return metrics.

    With checkpoint_dir (and train.save_steps > 0) the run saves checkpoints there and
    resumes from the last one a killed run on the same inputs left."""
    from accelerate import PartialState

    device = device or pick_device()
    # Under accelerate launch, the processes' group (on CPU it must be asked for: PartialState is set once).
    state = PartialState(cpu=device == "cpu")
    if params.loop == "manual" and state.num_processes > 1:
        raise StageError("train.loop: manual runs in one process: use train.loop: trl with accelerate launch, "
                         "or train.launcher: python")
    train_ds, skipped = load_split(train_path, dataset=params.dataset)
    try:
        answer_format = answer_format_of(row["completion"][0]["content"] for row in train_ds)
    except ValueError as e:
        raise StageError(f"{train_path}: {e}") from e
    eval_ds, skipped_eval = load_split(validation_path, required=False, dataset=params.dataset)
    if is_encoder_decoder(require_base(base_dir)) != (params.task == "seq2seq"):  # the base says which it is
        kind = "an encoder-decoder" if params.task == "causal" else "a causal LM"
        raise StageError(f"the base in {base_dir} is {kind}: set train.task: "
                         f"{'seq2seq' if params.task == 'causal' else 'causal'} (or another base.model)")
    unwritable = check_answers_writable(load_tokenizer(base_dir), train_ds, answer_format)
    start = time.monotonic()
    checkpoints = checkpoint_dir is not None and params.save_steps > 0
    resume = None
    if checkpoints:
        fingerprint = run_fingerprint(params, [train_path, validation_path], base_dir, state.num_processes)
        with state.main_process_first():  # the others then find the folder as the main one left it
            resume = resume_point(checkpoint_dir, fingerprint)
    with (nullcontext(checkpoint_dir) if checkpoints
          else tempfile.TemporaryDirectory(prefix="citetune-train-")) as output_dir:
        log.info("training on %d examples (%d validation), %s, %s, loop %s", len(train_ds),
                 len(eval_ds) if eval_ds is not None else 0, device, params.quantization, params.loop)
        if params.task == "seq2seq":  # an encoder-decoder: Seq2SeqTrainer, no chat template
            from citetune.seq2seq import fit_seq2seq

            run = fit_seq2seq(params, train_ds, eval_ds, base_dir, output_dir, device, live_dir, max_steps,
                              logging_steps, checkpoints, resume)
        elif params.loop == "manual":
            from citetune.manual_loop import fit_manual

            run = fit_manual(params, train_ds, eval_ds, base_dir, output_dir, device, live_dir, max_steps,
                             logging_steps, checkpoints, resume)
        else:
            run = fit_trl(params, train_ds, eval_ds, base_dir, output_dir, device, live_dir, max_steps,
                          logging_steps, checkpoints, resume)
        # The adapter names its base by hub id and revision (or absolute path) so that it loads from anywhere.
        base_name, base_revision = base_reference(base_dir)
        if hasattr(run.model, "peft_config"):  # train.peft: full saves the whole model instead
            adapter_config = run.model.peft_config["default"]
            adapter_config.base_model_name_or_path, adapter_config.revision = base_name, base_revision
            # PEFT keeps the matched modules as a set, whose order varies from run to run: sorted, identical
            # trainings write identical files (and DVC sees the same adapter).
            if isinstance(adapter_config.target_modules, set):
                adapter_config.target_modules = sorted(adapter_config.target_modules)
        # The modes it was taught to answer in (qa.modes when it was trained): ask answers in one of them.
        modes = sorted({r.get("mode", "closed_book") for r in split_records(train_path, params.dataset)
                        if isinstance(r, dict)})
        if is_main_process():
            with atomic_dir(adapter_dir) as tmp:
                run.model.save_pretrained(tmp)
                run.tokenizer.save_pretrained(tmp)
                write_json(tmp / TRAINED_MODES, modes)
                # The answer format it was taught: evaluate and ask read its answers in it.
                write_json(tmp / ADAPTER_FORMAT, {"answer_format": answer_format})
                (tmp / "README.md").write_text(model_card(run.model, base_name, base_revision, modes), encoding="utf-8")
    if checkpoints and is_main_process():
        finish(checkpoint_dir)
    seconds = time.monotonic() - start
    losses = [h["loss"] for h in run.log_history if "loss" in h]
    trainable, total = parameter_counts(run.model)
    return {
        "train_loss_first": losses[0] if losses else None,
        "train_loss_final": losses[-1] if losses else None,
        "train_loss_mean": run.training_loss,
        "eval_loss": run.final_eval.get("eval_loss"),
        "steps": run.global_step,
        "resumed_from_step": step_of(resume) if resume is not None else 0,
        "epochs": run.epoch,
        "examples": len(train_ds),
        "examples_over_max_length": run.examples_over_max_length,
        "answers_not_writable": unwritable,
        "seconds": round(seconds, 1),
        "trainable_params": trainable,
        "total_params": total,
        "quantization": params.quantization,
        "device": device,
        "skipped_records": skipped + skipped_eval,
    }
