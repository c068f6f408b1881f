"""train.loop: manual — the fine-tuning of training.py written out as a plain PyTorch loop.

What TRL's SFTTrainer does, step by step in view: the same prompt/completion pairs tokenized with the
model's chat template and the loss on the completion's tokens only, the same LoRA adapter, AdamW with
the same linear warm-up and decay, gradient accumulation (the loss divided by the answer tokens of
the whole accumulated batch, as the Trainer does), clipping at train.max_grad_norm, evaluation and
logging at the same steps, and the same DVCLive curves and log keys.
"""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from citetune.chat import fit_messages
from citetune.checkpoints import step_of
from citetune.errors import StageError
from citetune.models import load_base, load_tokenizer
from citetune.params import TrainParams
from citetune.training import (
    WARMUP_RATIO,
    DVCLiveLosses,
    Fitted,
    _fit_qlora_to_cpu,
    lora_config,
    step_plan,
    warn_if_overlong,
)

log = logging.getLogger(__name__)

# --- data ----------------------------------------------------------------------------------

def tokenize(tokenizer, row: dict, max_length: int) -> dict | None:
    """input_ids and labels of one prompt/completion pair, as SFTTrainer prepares them: -100 on the
    prompt, cut to max_length from the end; None when the cut leaves no completion token."""
    from trl.data_utils import common_prefix_length

    # A template with no system role (Gemma, early Mistral) gets the system prompt in the user's turn.
    prompt = tokenizer.apply_chat_template(fit_messages(tokenizer, row["prompt"]), add_generation_prompt=True,
                                           tokenize=True, return_dict=True)["input_ids"]
    ids = tokenizer.apply_chat_template(fit_messages(tokenizer, row["prompt"] + row["completion"]),
                                        tokenize=True, return_dict=True)["input_ids"]
    start = common_prefix_length(prompt, ids)  # where the answer starts, as TRL finds it
    labels = ([-100] * start + ids[start:])[:max_length]
    return {"input_ids": ids[:max_length], "labels": labels} if any(t != -100 for t in labels) else None


def tokenize_split(tokenizer, dataset, max_length: int) -> list[dict]:
    return [ex for row in dataset if (ex := tokenize(tokenizer, row, max_length)) is not None]


def collate(examples: list[dict], pad_token_id: int, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Right-padded input_ids (pad token), labels (-100) and attention_mask."""
    from torch.nn.utils.rnn import pad_sequence

    def padded(key, value):
        return pad_sequence([torch.tensor(ex[key]) for ex in examples], batch_first=True, padding_value=value)

    ids = padded("input_ids", pad_token_id)
    mask = pad_sequence([torch.ones(len(ex["input_ids"]), dtype=torch.long) for ex in examples], batch_first=True)
    return {"input_ids": ids.to(device), "labels": padded("labels", -100).to(device), "attention_mask": mask.to(device)}


# --- model ---------------------------------------------------------------------------------

def load_model(params: TrainParams, base_dir: str | Path, device: str):
    """(the base wrapped with a fresh LoRA adapter, its tokenizer), prepared as build_trainer prepares them."""
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import set_seed

    model = load_base(base_dir, params.quantization, device)
    tokenizer = load_tokenizer(base_dir)
    quantized = params.quantization == "4bit"
    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=device == "cuda")
    elif device == "cuda":
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    set_seed(params.seed)  # the adapter's initial weights
    model = get_peft_model(model, lora_config(params))
    if quantized and device == "cpu":
        _fit_qlora_to_cpu(model)
    return model, tokenizer


def token_losses(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(summed cross-entropy, answer tokens, tokens predicted right) of a batch: each token predicts the next."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    logits, labels = logits[:, :-1].float(), batch["labels"][:, 1:]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                                             ignore_index=-100, reduction="sum")
    valid = labels != -100
    return loss, valid.sum(), ((logits.argmax(-1) == labels) & valid).sum()


# --- the loop ------------------------------------------------------------------------------

class ManualLoop:
    """AdamW on the adapter's weights, a linear schedule with warm-up, accumulation and clipping."""

    def __init__(self, params: TrainParams, model, tokenizer, device: str, total_steps: int):
        from transformers import get_linear_schedule_with_warmup

        self.params, self.model, self.device = params, model, device
        self.pad_token_id = tokenizer.pad_token_id
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        # The Trainer's defaults: no weight decay, betas (0.9, 0.999), eps 1e-8.
        self.optimizer = torch.optim.AdamW(self.trainable, lr=params.learning_rate, weight_decay=0.0)
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, math.ceil(total_steps * WARMUP_RATIO),
                                                         total_steps)
        self.bf16 = device == "cuda" and torch.cuda.is_bf16_supported()

    def _forward(self, batch):
        with torch.autocast(device_type="cuda" if self.device == "cuda" else "cpu", dtype=torch.bfloat16,
                            enabled=self.bf16):
            return token_losses(self.model, batch)

    def step(self, micro_batches: list[list[dict]]) -> dict:
        """One optimizer step over micro-batches of tokenized examples: the loss of each is divided by the
        answer tokens of all of them, so that accumulating equals one batch of the lot."""
        self.model.train()
        batches = [collate(examples, self.pad_token_id, self.device) for examples in micro_batches]
        n_items = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches)
        loss_value, accuracies = 0.0, []
        for batch in batches:
            loss_sum, n_valid, n_correct = self._forward(batch)
            loss = loss_sum / max(n_items, 1)
            loss.backward()
            loss_value += loss.item()
            accuracies.append(n_correct.item() / max(n_valid.item(), 1))
        clip = self.params.max_grad_norm if self.params.max_grad_norm > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.trainable, clip).item()  # the norm before clipping
        learning_rate = self.scheduler.get_last_lr()[0]  # the rate this step uses, as the Trainer logs it
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {"loss": loss_value, "grad_norm": grad_norm, "learning_rate": learning_rate,
                "token_accuracies": accuracies}

    @torch.no_grad()
    def evaluate(self, examples: list[dict]) -> dict:
        """eval_loss as the Trainer reports it (each batch's mean token loss, weighted by its examples)
        and TRL's eval_mean_token_accuracy (the mean of the batches' accuracies)."""
        self.model.eval()
        size = self.params.batch_size
        losses, weights, accuracies = [], [], []
        for i in range(0, len(examples), size):
            chunk = examples[i:i + size]
            loss_sum, n_valid, n_correct = self._forward(collate(chunk, self.pad_token_id, self.device))
            losses.append(loss_sum.item() / max(n_valid.item(), 1))
            weights.append(len(chunk))
            accuracies.append(n_correct.item() / max(n_valid.item(), 1))
        self.model.train()
        return {"eval_loss": sum(x * w for x, w in zip(losses, weights)) / sum(weights),
                "eval_mean_token_accuracy": sum(accuracies) / len(accuracies)}


def _epoch_batches(train: list[dict], params: TrainParams, generator: torch.Generator) -> list[list[list[int]]]:
    """One epoch's optimizer steps, each a list of micro-batches of example indices, grouped by length
    as the TRL path's sampler groups them (less padding)."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    size, accum = params.batch_size, params.gradient_accumulation_steps
    order = list(LengthGroupedSampler(size * accum, lengths=[len(ex["input_ids"]) for ex in train],
                                      generator=generator))
    micro = [order[i:i + size] for i in range(0, len(order), size)]
    return [micro[i:i + accum] for i in range(0, len(micro), accum)]


# --- checkpoints ---------------------------------------------------------------------------

LOOP_STATE = "loop_state.pt"  # written into a checkpoint last (checkpoints.COMPLETE_MARKERS)
KEEP_CHECKPOINTS = 2  # as the TRL path keeps them


@dataclass
class Progress:
    """Where the loop stands: what a checkpoint holds beside the adapter, optimizer and schedule."""
    step: int = 0
    epoch_index: int = 0
    epoch_start_step: int = 0  # the step the current epoch began after
    window_loss: float = 0.0  # since the last logged step
    window_accuracies: list[float] = field(default_factory=list)
    total_loss: float = 0.0
    last_logged: int = 0
    history: list[dict] = field(default_factory=list)


def save_checkpoint(checkpoint_dir: str | Path, loop: ManualLoop, progress: Progress) -> Path:
    """checkpoint_dir/checkpoint-<step>: the adapter, then the optimizer, schedule, RNG and progress; written
    beside and renamed into place, so that a kill leaves no half checkpoint. The last two are kept."""
    folder = Path(checkpoint_dir) / f"checkpoint-{progress.step}"
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    loop.model.save_pretrained(partial)
    torch.save({"optimizer": loop.optimizer.state_dict(), "scheduler": loop.scheduler.state_dict(),
                "rng": torch.get_rng_state(),  # LoRA dropout draws from it
                "progress": asdict(progress)}, partial / LOOP_STATE)
    partial.rename(folder)
    for old in sorted(Path(checkpoint_dir).glob("checkpoint-*"), key=step_of)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def load_checkpoint(folder: Path, loop: ManualLoop) -> Progress:
    """Put the loop back where save_checkpoint left it."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(loop.model, load_file(folder / "adapter_model.safetensors"))
    state = torch.load(folder / LOOP_STATE, weights_only=True)
    loop.optimizer.load_state_dict(state["optimizer"])
    loop.scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    return Progress(**state["progress"])


def fit_manual(params: TrainParams, train_ds, eval_ds, base_dir: str | Path, scratch: str | Path, device: str,
               live_dir: str | Path | None, max_steps: int = -1, logging_steps: int | None = None,
               checkpoints: bool = False, resume: Path | None = None) -> Fitted:
    """train.loop: manual's counterpart of training.fit_trl; with `checkpoints`, save them in `scratch` every
    train.save_steps and resume from `resume`."""
    model, tokenizer = load_model(params, base_dir, device)
    cut = warn_if_overlong(tokenizer, train_ds, params.max_length)
    train = tokenize_split(tokenizer, train_ds, params.max_length)
    if not train:
        raise StageError(f"no training example keeps an answer token within train.max_length "
                         f"({params.max_length}): raise train.max_length")
    evals = tokenize_split(tokenizer, eval_ds, params.max_length) if eval_ds is not None else []
    plan = step_plan(params, len(train), max_steps, logging_steps)
    loop = ManualLoop(params, model, tokenizer, device, plan.total)
    progress = Progress()
    if resume is not None:
        log.info("resuming from %s (a run on the same params, data and base was stopped there)", resume)
        progress = load_checkpoint(resume, loop)
    live = DVCLiveLosses(live_dir, progress.step if resume is not None else None) if live_dir is not None else None
    p = progress

    def record(logs: dict) -> None:
        p.history.append(logs)
        if live is not None:
            live.log(logs["step"], logs)

    epoch = p.epoch_index
    while p.step < plan.total:
        # The epoch's order comes from the seed and the epoch alone, as in the TRL path: a resumed run replays it.
        steps = _epoch_batches(train, params, torch.Generator().manual_seed(params.seed + p.epoch_index))
        n_micro, skip = sum(len(s) for s in steps), p.step - p.epoch_start_step
        done = sum(len(s) for s in steps[:skip])
        for micro_batches in steps[skip:skip + plan.total - p.step]:
            out = loop.step([[train[j] for j in ids] for ids in micro_batches])
            p.step += 1
            done += len(micro_batches)
            epoch = p.epoch_index + done / n_micro
            p.window_loss += out["loss"]
            p.total_loss += out["loss"]
            p.window_accuracies += out["token_accuracies"]
            if p.step == 1 or p.step % plan.logging_steps == 0:
                record({"loss": p.window_loss / (p.step - p.last_logged), "grad_norm": out["grad_norm"],
                        "learning_rate": out["learning_rate"],
                        "mean_token_accuracy": sum(p.window_accuracies) / len(p.window_accuracies),
                        "epoch": epoch, "step": p.step})
                p.window_loss, p.window_accuracies, p.last_logged = 0.0, [], p.step
            if evals and p.step % plan.eval_steps == 0:
                record({**loop.evaluate(evals), "epoch": epoch, "step": p.step})
            if checkpoints and params.save_steps and p.step % params.save_steps == 0 and p.step < plan.total:
                save_checkpoint(scratch, loop, p)
        p.epoch_index, p.epoch_start_step = p.epoch_index + 1, p.step
    final_eval = {}
    if evals:  # the loss of the final adapter, evaluated once
        last = next((h for h in reversed(p.history) if "eval_loss" in h), None)
        final_eval = last if last is not None and last["step"] == p.step else {**loop.evaluate(evals), "step": p.step}
    if live is not None:
        live.close()
    model.eval()
    return Fitted(model, tokenizer, p.history, p.step, epoch, p.total_loss / max(p.step, 1), final_eval, cut)
