"""Encoder-decoders (train.task: seq2seq), on local stand-ins of T5 and LED with random weights: the base stage
takes their checkpoints, the encoder reads the prompt as plain text and the decoder learns the answer and its
eos, generation gives the same Generated results (grounded decoding included), and a trained model reloads
from elsewhere and is scored by the evaluation code."""

import json
from pathlib import Path

import pytest

from citetune.answers import ABSTAIN, work_line
from citetune.base_source import BASE_RECORD, fetch_base, model_files
from citetune.errors import StageError
from citetune.generation import generate, grounded_constraint, grounded_decoding
from citetune.io import write_json
from citetune.models import (
    is_encoder_decoder,
    load_base,
    load_tokenizer,
    settle_base_template,
)
from citetune.params import default_params
from citetune.testing.sft_sample import sample_library, sft_records, write_sft
from citetune.testing.standins import SEQ2SEQ, build_seq2seq_standin
from citetune.tiny_model import paper_texts, record_texts
from citetune.training import load_split

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus_texts() -> list[str]:
    return record_texts(ROOT / "data/sample") + paper_texts(ROOT / "data/sample")


@pytest.fixture(scope="module")
def few_records() -> list[dict]:
    """One one-work answer and one abstention of the closed-book train split."""
    rows = [r for r in sft_records(modes=["closed_book"]) if r["split"] == "train"]
    return [next(r for r in rows if len(r["dois"]) == 1), next(r for r in rows if r["abstain"])]


def _base(name: str, tmp_path: Path, texts: list[str], init: float = 0.3, line_breaks: bool = True) -> Path:
    """The base stage on a local stand-in: copied to models/base, no chat template given."""
    checkpoint = build_seq2seq_standin(name, tmp_path / f"{name}-checkpoint", texts, init=init,
                                       line_breaks=line_breaks)
    write_json(tmp_path / "models/base" / BASE_RECORD, fetch_base(str(checkpoint), tmp_path / "models/base"))
    assert settle_base_template(tmp_path / "models/base") is False
    return tmp_path / "models/base"


def test_the_base_stage_takes_the_files_t5_and_led_checkpoints_ship():
    flan_t5 = ["config.json", "generation_config.json", "model.safetensors", "spiece.model", "tokenizer.json",
               "tokenizer_config.json", "special_tokens_map.json", "flax_model.msgpack", "tf_model.h5",
               "pytorch_model.bin", "README.md", ".gitattributes"]
    led = ["config.json", "merges.txt", "pytorch_model.bin", "tf_model.h5", "tokenizer.json", "vocab.json",
           "README.md"]
    assert model_files(flan_t5) == ["README.md", "config.json", "generation_config.json", "model.safetensors",
                                    "special_tokens_map.json", "spiece.model", "tokenizer.json",
                                    "tokenizer_config.json"]
    assert model_files(led) == ["README.md", "config.json", "merges.txt", "pytorch_model.bin", "tokenizer.json",
                                "vocab.json"]


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_prompts_are_plain_text_and_answers_end_with_eos(name, corpus_texts, few_records, tmp_path):
    from citetune.seq2seq import build_trainer

    base = _base(name, tmp_path, corpus_texts)
    assert is_encoder_decoder(base)
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in few_records))
    train_ds, _ = load_split(tmp_path / "train.jsonl")
    trainer = build_trainer(default_params("train", task="seq2seq", max_length=448), train_ds, None, base,
                            tmp_path / "out", device="cpu")
    tok = trainer.processing_class
    for row, rec in zip(trainer.train_dataset, few_records):
        system, user, answer = (m["content"] for m in rec["messages"])
        source = tok.decode(row["input_ids"], skip_special_tokens=True)
        assert source.startswith(system.split()[0]) and "<|im_start|>" not in source
        assert " ".join(rec["claim"].split()[2:5]) in source  # the user's turn follows the system prompt
        assert row["labels"][-1] == tok.eos_token_id and row["labels"].count(tok.eos_token_id) == 1
        assert tok.decode(row["labels"], skip_special_tokens=True) == answer
    assert trainer.model.peft_config["default"].task_type == "SEQ_2_SEQ_LM"


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_grounded_decoding_holds_on_the_decoders_tokens(name, corpus_texts, few_records, tmp_path):
    """An untrained model, constrained: every line it writes is a library line, whole or cut by the budget."""
    base = _base(name, tmp_path, corpus_texts)
    model, tok = load_base(base, device="cpu"), load_tokenizer(base)
    library = sample_library()
    records = [r | {"mode": "closed_book"} for r in few_records]
    decoding = grounded_decoding(tok, model, library)
    answers = generate(model, tok, [r["messages"][:-1] for r in records], 60, batch_size=2,
                       constraint=grounded_constraint(decoding, library, records))
    lines = {work_line(w) for w in library} | {ABSTAIN}
    for answer in answers:
        written = answer.text.split("\n")
        assert written[0]  # the forced first token and the checkpoint's minimum length are overridden
        assert all(line in lines for line in (written if answer.finished else written[:-1]))
        assert answer.finished or any(line.startswith(written[-1]) for line in lines)
    free = generate(model, tok, [r["messages"][:-1] for r in records], 8, batch_size=2)
    assert all(not a.finished and a.text for a in free)  # the budget, not an end token, stopped them


def test_a_tokenizer_that_cannot_write_the_answers_structure_is_refused_before_training(corpus_texts, tmp_path):
    """Single-work answers read back the same without their line break; multi-work ones do not."""
    from citetune.training import train_adapter

    base = _base("t5", tmp_path, corpus_texts, line_breaks=False)  # as T5's own vocabulary
    rows = [r for r in sft_records(modes=["closed_book"]) if r["split"] == "train"]
    multi = [r for r in rows if len(r["dois"]) > 1]
    write_sft(tmp_path / "sft", multi + [r for r in rows if len(r["dois"]) == 1][:3])
    params = default_params("train", task="seq2seq", quantization="none", max_length=448)
    with pytest.raises(StageError, match=f"cannot write {len(multi)} of {len(multi) + 3} answers so that they read "
                                         "back the same"):
        train_adapter(params, tmp_path / "sft/train.jsonl", tmp_path / "sft/validation.jsonl", base,
                      tmp_path / "adapter", live_dir=None, device="cpu")
    assert not (tmp_path / "adapter").exists()
    # JSON answers need braces and quotes, which this vocabulary (trained on prose) cannot write either.
    rows = [r for r in sft_records(modes=["closed_book"], answer_format="json") if r["split"] == "train"][:4]
    write_sft(tmp_path / "json", rows)
    with pytest.raises(StageError, match="cannot write 4 of 4 answers so that they read back the same"):
        train_adapter(params, tmp_path / "json/train.jsonl", tmp_path / "json/validation.jsonl", base,
                      tmp_path / "adapter", live_dir=None, device="cpu")


def test_a_task_the_base_is_not_is_refused_naming_the_param(corpus_texts, few_records, tiny_base, tmp_path):
    from citetune.training import train_adapter

    write_sft(tmp_path / "sft", few_records)
    split = (tmp_path / "sft/train.jsonl", tmp_path / "sft/validation.jsonl")
    t5 = _base("t5", tmp_path / "t5", corpus_texts)
    with pytest.raises(StageError, match="is an encoder-decoder: set train.task: seq2seq"):
        train_adapter(default_params("train"), *split, t5, tmp_path / "a", live_dir=None, device="cpu")
    with pytest.raises(StageError, match="is a causal LM: set train.task: causal"):
        train_adapter(default_params("train", task="seq2seq", quantization="none"), *split, tiny_base,
                      tmp_path / "b", live_dir=None, device="cpu")


@pytest.mark.slow
@pytest.mark.parametrize("name,peft,learning_rate,init", [("t5", "lora", 0.01, 0.3), ("led", "lora", 0.005, 0.1),
                                                         ("t5", "full", 0.003, 0.3)])
def test_trains_reloads_from_elsewhere_stops_and_is_scored(name, peft, learning_rate, init, corpus_texts, few_records,
                                                          tmp_path, monkeypatch):
    from citetune.evaluation import evaluate
    from citetune.matching import LocalIndex
    from citetune.training import train_adapter
    from citetune.verification import Verifier

    base = _base(name, tmp_path, corpus_texts, init)
    sft = tmp_path / "sft"
    write_sft(sft, few_records)
    params = default_params("train", task="seq2seq", peft=peft, quantization="none", batch_size=2, max_length=448,
                            learning_rate=learning_rate, epochs=80)
    metrics = train_adapter(params, sft / "train.jsonl", sft / "validation.jsonl", base, tmp_path / "adapter",
                            live_dir=None, device="cpu", logging_steps=10)
    assert metrics["train_loss_final"] < 0.4 * metrics["train_loss_first"]
    saved = {p.name for p in (tmp_path / "adapter").iterdir()}
    if peft == "lora":
        assert "adapter_config.json" in saved and "model.safetensors" not in saved
    else:  # the whole model, as a checkpoint of its own
        assert "model.safetensors" in saved and "adapter_config.json" not in saved
        assert metrics["trainable_params"] == metrics["total_params"]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    verifier = Verifier(LocalIndex.from_records(tmp_path / "index.sqlite", [
        json.loads(line) for line in (ROOT / "data/sample/crossref.jsonl").read_text().splitlines()]),
        default_params("match"))
    run = evaluate(base, tmp_path / "adapter", sft, verifier,
                   default_params("evaluate", splits=["train"], max_new_tokens=120, batch_size=2), device="cpu")
    lines = {work_line(w) for w in sample_library()} | {ABSTAIN}
    for system in ("tuned/closed_book", "tuned/closed_book/grounded"):
        scores = run.metrics[system]["train"]
        assert scores["n"] == 2 and scores["truncated_rate"] == 0.0  # every answer stopped on eos
        answers = [p["answer"] for p in run.predictions if p["system"] == system]
        assert all(line in lines for a in answers for line in a.split("\n")), answers  # the answer format, learnt
    assert run.metrics["tuned/closed_book/grounded"]["train"]["fabricated_rate"] == 0.0
    if peft == "full":  # every weight free to move: the two answers are learnt word for word
        answers = [p["answer"] for p in run.predictions if p["system"] == "tuned/closed_book"]
        assert answers == [r["messages"][-1]["content"] for r in few_records]


def test_full_fine_tuning_is_refused_where_it_cannot_run():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="peft: full is for task: seq2seq"):
        default_params("train", peft="full")
    with pytest.raises(ValidationError, match="cannot train 4-bit weights"):
        default_params("train", task="seq2seq", peft="full", quantization="4bit")
    assert default_params("train", task="seq2seq", peft="full").peft == "full"
