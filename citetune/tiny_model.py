"""The tiny base model, built offline from the bundled corpus: the whole pipeline runs on a laptop CPU
without the hub.

Its byte-level BPE tokenizer is trained on the corpus with DOIs kept whole by the pre-tokenizer, so
a DOI is a few tokens rather than thirty; it speaks the ChatML-style chat template of models.py, and
it is briefly pretrained on the Crossref records so that, like a real pretrained model, it knows
titles and DOIs before it is tuned.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import time
from pathlib import Path

import torch
import yaml

from citetune.errors import StageError
from citetune.ids import DOI_CORE
from citetune.io import atomic_dir
from citetune.models import CHAT_TEMPLATE
from citetune.params import TinyModelParams

log = logging.getLogger(__name__)

BOS, EOS, PAD = "<|endoftext|>", "<|im_end|>", "<|pad|>"
IM_START = "<|im_start|>"
SPECIAL_TOKENS = [PAD, BOS, IM_START, EOS]

# Pre-tokenization: a DOI is one piece (BPE may then merge it whole); the rest follows GPT-2's split.
DOI_PIECE = rf" ?{DOI_CORE}"
GPT2_PIECES = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
CITE_MARKER = re.compile(r"\s*\[@[^\]]+\]")


# --- the corpus the tiny model learns from -------------------------------------------------

def _record_line(rec: dict) -> str:
    title = " ".join((rec.get("title") or [""])[0].split())
    year = ((rec.get("issued") or {}).get("date-parts") or [[None]])[0][0]
    authors = ", ".join(
        f"{a.get('given', '')} {a.get('family', '')}".strip() for a in rec.get("author", [])
    )
    venue = " ".join((rec.get("container-title") or [""])[0].split())
    parts = [f"{title} ({year})." if year else f"{title}.", f"{authors}." if authors else "",
             f"{venue}." if venue else "", f"DOI: {rec['DOI']}"]
    return " ".join(p for p in parts if p)


def paper_texts(sample_dir: str | Path = "data/sample") -> list[str]:
    """The papers' prose (title, abstract, headings, paragraphs), citation markers removed."""
    texts: list[str] = []
    for path in sorted((Path(sample_dir) / "papers").glob("*.yaml")):
        paper = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        texts.append(" ".join(str(paper.get("title", "")).split()))
        texts.append(" ".join(str(paper.get("abstract", "")).split()))
        for sec in paper.get("sections") or []:
            texts.append(str(sec.get("heading", "")))
            for para in sec.get("paragraphs") or []:
                texts.append(CITE_MARKER.sub("", " ".join(str(para).split())))
    return [t for t in texts if t.strip()]


def record_texts(sample_dir: str | Path = "data/sample") -> list[str]:
    """One line per Crossref record: title (year), authors, venue, DOI."""
    path = Path(sample_dir) / "crossref.jsonl"
    texts = []
    if path.exists():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    texts.append(_record_line(json.loads(line)))
                except (json.JSONDecodeError, KeyError, TypeError, IndexError, AttributeError) as e:
                    log.warning("%s:%d: skipping a malformed record (%s)", path, n, e)
    return texts


# --- tokenizer and model -------------------------------------------------------------------

def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on `texts`, as a PreTrainedTokenizerFast with a chat template."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(f"{DOI_PIECE}|{GPT2_PIECES}"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    # A DOI must come out exactly, so each gets the weight of a frequent word and BPE merges it into
    # one or a few tokens; the chat scaffolding, read in every example, gets the same.
    dois = sorted({" " + m.group(0).strip() for t in texts for m in re.finditer(DOI_PIECE, t)})
    scaffold = ["system\n", "user\n", "assistant\n", "DOI: "]
    tok.train_from_iterator(texts + (dois + scaffold) * 8, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
        additional_special_tokens=[IM_START], clean_up_tokenization_spaces=False,
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def build_tiny_model(params: TinyModelParams, tokenizer):
    """A randomly initialised Llama causal LM sized by base.tiny, seeded for reproducibility."""
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    if params.hidden_size % params.num_heads:
        raise StageError(f"base.tiny.hidden_size ({params.hidden_size}) must be a multiple of "
                         f"base.tiny.num_heads ({params.num_heads})")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=params.hidden_size,
        intermediate_size=params.hidden_size * 2,
        num_hidden_layers=params.num_layers,
        num_attention_heads=params.num_heads,
        num_key_value_heads=params.num_heads,
        max_position_embeddings=params.max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(params.seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, do_sample=False,
    )
    return model


def pretrain(model, tokenizer, texts: list[str], epochs: int, lr: float = 2e-3, batch_size: int = 16,
             seed: int = 0) -> list[float]:
    """A short full-parameter causal-LM pretraining on `texts` (one document each, eos-terminated), with
    transformers' Trainer on the CPU (the same model whatever the machine): warm-up over a tenth of the
    steps then a cosine decay, gradients clipped at 1, batches of similar length.

    Returns the mean loss of each epoch."""
    from datasets import Dataset
    from transformers import (
        DataCollatorForLanguageModeling,
        PrinterCallback,
        Trainer,
        TrainingArguments,
    )

    if epochs <= 0:
        return []
    max_len = model.config.max_position_embeddings
    docs = Dataset.from_dict({"input_ids": [tokenizer(t + tokenizer.eos_token, truncation=True,
                                                      max_length=max_len)["input_ids"] for t in texts]})
    with tempfile.TemporaryDirectory(prefix="citetune-pretrain-") as scratch:
        args = TrainingArguments(
            output_dir=scratch, num_train_epochs=epochs, learning_rate=lr, per_device_train_batch_size=batch_size,
            lr_scheduler_type="cosine", warmup_steps=0.1, weight_decay=0.0, max_grad_norm=1.0,
            seed=seed, data_seed=seed, train_sampling_strategy="group_by_length", use_cpu=True,
            logging_strategy="epoch", save_strategy="no", report_to="none", disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=args, train_dataset=docs,
                          data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False))
        trainer.remove_callback(PrinterCallback)  # the losses go to the model card and the stage's log
        trainer.train()
    model.eval()
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


def _model_card(params: TinyModelParams, n_prose: int, n_records: int, vocab: int, n_params: int,
                pretrain_epochs: int, losses: list[float]) -> str:
    pre = (f"It was then pretrained as a causal LM for {pretrain_epochs} epochs on the {n_records} record "
           f"lines (mean loss per epoch: {', '.join(f'{x:.2f}' for x in losses)}), so it knows each work's "
           "title, year and DOI, as a real pretrained model knows famous papers. It has not read the "
           "papers' prose, and it has never seen a question or the chat format: the train stage teaches "
           "which work supports which statement, and how to answer."
           if pretrain_epochs > 0 else "It was not pretrained: its weights are random.")
    return f"""# Tiny base model (built offline)

A Llama-architecture causal LM built by `python -m stages.base` with `base.model: tiny`, for
running the citetune pipeline on a CPU without the Hugging Face hub. It is a test vehicle, not a
language model worth using on its own: for real work set `base.model` to a hub id
(`Qwen/Qwen2.5-0.5B-Instruct`) or to a local model directory.

- architecture: LlamaForCausalLM, hidden {params.hidden_size}, {params.num_layers} layers,
  {params.num_heads} heads, MLP {params.hidden_size * 2}, tied embeddings, context {params.max_length}
- parameters: {n_params:,}
- tokenizer: byte-level BPE, {vocab} tokens, trained with `tokenizers` on `data/sample`: the prose
  of its {n_prose} text blocks (paper titles, abstracts, headings, paragraphs with citation markers
  removed) and {n_records} Crossref record lines (`title (year). authors. venue. DOI: doi`). A DOI is
  pre-tokenized as one piece and weighted like a frequent word, so that (at the default vocabulary
  size) a corpus DOI is a single token.
  Special tokens: `{BOS}` (bos), `{EOS}` (eos, ends every chat turn), `{PAD}` (pad), `{IM_START}`.
- chat template: ChatML-style (`<|im_start|>role\\n...<|im_end|>\\n`).
- initialisation: seed {params.seed}. {pre}
"""


def build_tiny_base(params: TinyModelParams, out_dir: str | Path, sample_dir: str | Path = "data/sample",
                    pretrain_epochs: int | None = None, pretrain_lr: float | None = None) -> dict:
    """Build, pretrain briefly, and save the tiny model and its tokenizer to `out_dir`.

    pretrain_epochs/pretrain_lr default to base.tiny.pretrain_epochs/pretrain_lr when params has them.
    """
    start = time.monotonic()
    if pretrain_epochs is None:
        pretrain_epochs = params.pretrain_epochs
    if pretrain_lr is None:
        pretrain_lr = params.pretrain_lr
    torch.manual_seed(params.seed)
    prose, records = paper_texts(sample_dir), record_texts(sample_dir)
    if not prose and not records:
        raise StageError(f"no corpus text under {sample_dir}: the tiny model is built from its papers/*.yaml "
                         "and crossref.jsonl; restore data/sample, or set base.model to a model path")
    tokenizer = train_tokenizer(prose + records, params.vocab_size)
    model = build_tiny_model(params, tokenizer)
    # Pretraining on the records only: it is what makes the tuned model cite exactly, and the prose
    # would cost ten times the time.
    losses = pretrain(model, tokenizer, records, pretrain_epochs, lr=pretrain_lr, seed=params.seed)
    n_params = sum(p.numel() for p in model.parameters())
    seconds = time.monotonic() - start
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(_model_card(params, len(prose), len(records), len(tokenizer), n_params,
                                                   pretrain_epochs, losses), encoding="utf-8")
    info = {"model": "tiny", "parameters": n_params, "vocab_size": len(tokenizer),
            "texts": {"prose": len(prose), "records": len(records)},
            "pretrain_losses": losses, "seconds": round(seconds, 2)}
    log.info("tiny model: %s parameters, vocab %s, built in %.1f s", f"{n_params:,}", len(tokenizer), seconds)
    return info
