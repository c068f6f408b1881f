"""Generation as real checkpoints need it: every end token, no shipped penalty, a budget from the answers."""

import pytest
import torch

from citetune.generation import (
    answer_budget,
    end_token_ids,
    generate,
    template_end_token,
)
from citetune.models import load_base, load_tokenizer
from citetune.testing.standins import QWEN_TEMPLATE

PROMPT = [{"role": "system", "content": "Answer with the works."},
          {"role": "user", "content": "Which work introduced low-rank adaptation?"}]


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_base):
    return load_base(tiny_base, "none", "cpu"), load_tokenizer(tiny_base)


def test_the_templates_end_of_turn_token_ends_answers_even_when_eos_is_another(model_and_tokenizer, tiny_base):
    model, tok = model_and_tokenizer
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert template_end_token(tok) == im_end
    # A Qwen-base-style checkpoint: eos is <|endoftext|>, the template still ends turns with <|im_end|>.
    qwen_like = load_tokenizer(tiny_base)
    qwen_like.eos_token, qwen_like.chat_template = "<|endoftext|>", QWEN_TEMPLATE
    model.generation_config.eos_token_id = qwen_like.eos_token_id
    try:
        ends = end_token_ids(model, qwen_like)
        assert im_end in ends and qwen_like.eos_token_id in ends
        # Force the model to end its turn at once and then write more: the turn's end is where it stops.
        bias = torch.zeros(model.config.vocab_size)
        bias[im_end] = 50.0
        model.lm_head.bias = torch.nn.Parameter(bias)
        out = generate(model, qwen_like, [PROMPT], max_new_tokens=12, batch_size=1)[0]
        assert out.finished and out.text == ""
    finally:
        model.lm_head.bias = None
        model.generation_config.eos_token_id = tok.eos_token_id


def test_a_shipped_repetition_penalty_does_not_change_greedy_answers(model_and_tokenizer):
    model, tok = model_and_tokenizer
    plain = generate(model, tok, [PROMPT], max_new_tokens=24, batch_size=1)[0]
    model.generation_config.repetition_penalty = 3.0
    try:
        assert generate(model, tok, [PROMPT], max_new_tokens=24, batch_size=1)[0] == plain
        penalised = generate(model, tok, [PROMPT], max_new_tokens=24, batch_size=1, repetition_penalty=3.0)[0]
        assert penalised != plain  # the penalty is real: the override is what keeps answers greedy
    finally:
        model.generation_config.repetition_penalty = 1.0


def test_an_answer_cut_by_the_budget_is_marked_unfinished(model_and_tokenizer):
    model, tok = model_and_tokenizer
    bias = torch.zeros(model.config.vocab_size)
    bias[list(set(end_token_ids(model, tok)) | set(tok.all_special_ids))] = -50.0  # it never ends its turn
    model.lm_head.bias = torch.nn.Parameter(bias)
    try:
        cut = generate(model, tok, [PROMPT, PROMPT[1:]], max_new_tokens=6, batch_size=2)
    finally:
        model.lm_head.bias = None
    assert not any(g.finished for g in cut)  # the test above: the same model, made to end, is finished


def test_the_budget_fits_the_longest_gold_answer_in_the_models_tokens(model_and_tokenizer):
    _, tok = model_and_tokenizer
    answers = ["- Short (2020). DOI: 10.1000/a",
               "- A much longer title with many unusual words: zygomorphic quasicrystals (2021). DOI: 10.1000/xyz.123\n"
               "- And a second line (2022). DOI: 10.1000/b"]
    longest = len(tok(answers[1], add_special_tokens=False)["input_ids"])
    assert longest < answer_budget(tok, answers) <= 2 * longest
    assert answer_budget(tok, []) == 16
