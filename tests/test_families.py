"""Checkpoint families as they really differ (stand-ins with random weights and real-looking
tokenizers): each trains with its own template, learns to end its answer, names its base in the
adapter, loads from another directory with AutoPeftModelForCausalLM, and stops when it generates."""

import json
from pathlib import Path

import pytest

from citetune.base_source import BASE_RECORD, fetch_base
from citetune.chat import CHAT_TEMPLATE, fit_messages, settle_template, takes_system
from citetune.errors import StageError
from citetune.generation import end_token_ids, generate
from citetune.io import write_json
from citetune.models import load_tokenizer, settle_base_template
from citetune.params import default_params
from citetune.testing.sft_sample import sft_records
from citetune.testing.standins import FAMILIES, build_standin
from citetune.tiny_model import paper_texts, record_texts
from citetune.training import build_trainer, load_split, train_adapter

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus_texts() -> list[str]:
    return record_texts(ROOT / "data/sample") + paper_texts(ROOT / "data/sample")


@pytest.fixture(scope="module")
def few_records(tmp_path_factory) -> Path:
    """Two one-work answers and two abstentions: enough to learn the answers' shapes and their end."""
    rows = [r for r in sft_records(modes=["closed_book"]) if r["split"] == "train"]
    chosen = [r for r in rows if len(r["dois"]) == 1][:2] + [r for r in rows if r["abstain"]][:2]
    path = tmp_path_factory.mktemp("few") / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in chosen))
    return path


def _base(family: str, tmp_path: Path, texts: list[str]) -> Path:
    """The base stage on a local stand-in: copied to models/base, its chat template settled."""
    checkpoint = build_standin(family, tmp_path / f"{family}-checkpoint", texts)
    source = fetch_base(str(checkpoint), tmp_path / "models/base")
    write_json(tmp_path / "models/base" / BASE_RECORD, source)
    settle_base_template(tmp_path / "models/base")
    return tmp_path / "models/base"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_answer_ends_with_a_token_generation_stops_on(family, corpus_texts, few_records, tmp_path):
    base = _base(family, tmp_path, corpus_texts)
    train_ds, _ = load_split(few_records)
    trainer = build_trainer(default_params("train", quantization="none", max_length=448), train_ds, None, base,
                            tmp_path / "out", device="cpu")
    tok, model = trainer.processing_class, trainer.model
    ends = set(end_token_ids(model, tok))
    system = json.loads(few_records.read_text().splitlines()[0])["messages"][0]["content"]
    for row in trainer.train_dataset:
        answer = [t for t in row["labels"] if t != -100]
        assert answer[-1] in ends or (answer[-2] in ends and tok.decode(answer[-1:]).isspace())
        assert sum(t in ends for t in answer) == 1  # the end of the answer, nothing earlier
        assert system.split()[0] in tok.decode(row["input_ids"])  # a system role or not, the prompt is there
    assert takes_system(tok) == (family not in {"gemma", "mistral"})
    if family == "plain":  # no template of its own: citetune's, whose turns end with the model's eos
        assert tok.chat_template == CHAT_TEMPLATE and tok.eos_token_id in ends


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_trains_reloads_from_elsewhere_and_stops(family, corpus_texts, few_records, tmp_path,
                                                             monkeypatch):
    from peft import AutoPeftModelForCausalLM

    base = _base(family, tmp_path, corpus_texts)
    params = default_params("train", quantization="none", learning_rate=0.02, batch_size=4, max_length=448,
                            epochs=30)
    metrics = train_adapter(params, few_records, tmp_path / "absent.jsonl", base, tmp_path / "adapter",
                            live_dir=None, device="cpu", logging_steps=10)
    assert metrics["train_loss_final"] < 0.5 * metrics["train_loss_first"]
    config = json.loads((tmp_path / "adapter/adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str((tmp_path / f"{family}-checkpoint").resolve())
    assert "base_model:" in (tmp_path / "adapter/README.md").read_text()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    model = AutoPeftModelForCausalLM.from_pretrained(str(tmp_path / "adapter"))
    tok = load_tokenizer(tmp_path / "adapter")
    records = [json.loads(line) for line in few_records.read_text().splitlines()]
    answers = generate(model, tok, [r["messages"][:-1] for r in records], 120, batch_size=4)
    assert all(a.finished for a in answers)  # every answer ended on an end token, not the budget
    assert [a.text for a in answers] == [r["messages"][-1]["content"] for r in records]


def test_a_model_with_no_template_and_no_eos_is_refused_naming_the_param(corpus_texts, tmp_path):
    checkpoint = build_standin("plain", tmp_path / "plain", corpus_texts)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(checkpoint)
    tok.eos_token = None
    with pytest.raises(StageError, match="base.chat_template"):
        settle_template(tok)


def test_a_template_whose_answer_ends_with_plain_text_is_refused(corpus_texts, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(build_standin("plain", tmp_path / "plain", corpus_texts))
    no_end = ("{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
              "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}")
    with pytest.raises(StageError, match="never learn to stop"):
        settle_template(tok, no_end)


def test_a_system_prompt_goes_into_the_first_user_turn_only_where_the_template_has_no_system_role(
        corpus_texts, tmp_path):
    from transformers import AutoTokenizer

    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    gemma = AutoTokenizer.from_pretrained(build_standin("gemma", tmp_path / "gemma", corpus_texts))
    qwen = AutoTokenizer.from_pretrained(build_standin("qwen2.5", tmp_path / "qwen", corpus_texts))
    assert fit_messages(gemma, messages) == [{"role": "user", "content": "S\n\nQ"}]
    assert fit_messages(qwen, messages) == messages

