"""Answers from an encoder-decoder (T5, LED): the prompt is the encoder's input, the answer is all the
decoder writes after its start token; greedy, batched, stopped on the same end tokens as a causal LM.

Grounded decoding works unchanged: transformers hands `prefix_allowed_tokens_fn` the decoder's tokens,
which begin with the one decoder start token, so that token is the "prompt" the constraint skips.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from tqdm import tqdm

from citetune.chat import encoder_prompt
from citetune.generation import Generated, as_generated, end_token_ids

DECODER_START = 1  # generate() opens every answer with the single decoder_start_token_id


def greedy_config(model, tokenizer, max_new_tokens: int, ends: list[int], repetition_penalty: float | None):
    """The model's generation config, made greedy: a summarisation checkpoint (BART, LED) ships beam search,
    n-gram blocking, a minimum length and a forced first token, each of which would bend the answer."""
    config = copy.deepcopy(model.generation_config)
    config.update(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, temperature=1.0, top_p=1.0,
                  repetition_penalty=repetition_penalty or 1.0, no_repeat_ngram_size=0, min_length=0,
                  min_new_tokens=None, length_penalty=1.0, early_stopping=False, forced_bos_token_id=None,
                  forced_eos_token_id=None, max_length=None, pad_token_id=tokenizer.pad_token_id,
                  eos_token_id=ends)
    return config


@torch.no_grad()
def generate_seq2seq(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int, batch_size: int,
                     repetition_penalty: float | None = None,
                     constraint: Callable[[int, list[int]], Callable] | None = None,
                     desc: str = "generating") -> list[Generated]:
    """generation.generate for an encoder-decoder: the same arguments and the same results."""
    tokenizer.padding_side = "right"  # the encoder's padding is masked; right is what it was trained with
    texts = [encoder_prompt(p) for p in prompts]
    ends = end_token_ids(model, tokenizer)
    config = greedy_config(model, tokenizer, max_new_tokens, ends, repetition_penalty)
    results: list[Generated] = [Generated("", False)] * len(texts)
    # generate() fills a setting left None from the model's own config: a forced first token would come back.
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    own, inner.generation_config = inner.generation_config, config
    try:
        _batches(model, tokenizer, texts, ends, config, constraint, batch_size, desc, results)
    finally:
        inner.generation_config = own
    return results


def _batches(model, tokenizer, texts, ends, config, constraint, batch_size, desc, results) -> None:
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    model.eval()
    device = next(model.parameters()).device
    for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch"):
        idx = order[start:start + batch_size]
        enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True).to(device)
        extra = {"prefix_allowed_tokens_fn": constraint(DECODER_START, idx)} if constraint else {}
        out = model.generate(**enc, generation_config=config, **extra)
        for i, ids in zip(idx, out[:, DECODER_START:].tolist()):
            results[i] = as_generated(tokenizer, ids, ends)
