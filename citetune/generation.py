"""Answers from a chat model: greedy, batched, stopped on every end token the model and its template know.

A real checkpoint ships its own generation settings (a repetition penalty, sampling temperatures) and
often more end tokens than the tokenizer's eos: a Qwen base ends a turn with <|im_end|> but its eos
is <|endoftext|>, and left alone it writes the next turn, whose DOIs would then be scored.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm import tqdm

from citetune.answers import abstention, frame, work_line
from citetune.chat import render_prompt, template_end_token


@dataclass
class Generated:
    text: str
    finished: bool  # ended on an end token, not on the token budget


def _as_list(ids) -> list[int]:
    if ids is None:
        return []
    return [int(i) for i in ids] if isinstance(ids, (list, tuple)) else [int(ids)]


def end_token_ids(model, tokenizer) -> list[int]:
    """Every token that ends an answer: the tokenizer's eos, the model's generation eos(s), the template's."""
    config = getattr(model, "generation_config", None)
    ids = _as_list(tokenizer.eos_token_id) + _as_list(getattr(config, "eos_token_id", None))
    ids += _as_list(template_end_token(tokenizer))
    return list(dict.fromkeys(ids))


def answer_budget(tokenizer, answers: list[str], margin: float = 1.25, floor: int = 16) -> int:
    """Tokens enough for the longest of `answers` in this tokenizer, with a margin (max_new_tokens)."""
    longest = max((len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers), default=0)
    return max(floor, math.ceil((longest + 1) * margin))


def as_generated(tokenizer, ids: list[int], ends: list[int]) -> Generated:
    """The answer the generated token ids say, up to the first end token (finished) or all of them."""
    stop = next((k for k, t in enumerate(ids) if t in ends), None)
    # No clean-up of spaces: the text is what the tokens say, as grounded decoding reads them.
    text = tokenizer.decode(ids[:stop], skip_special_tokens=True, clean_up_tokenization_spaces=False).lstrip()
    # An unfinished answer keeps its last line break: it tells a whole last line from a cut one.
    return Generated(text.strip() if stop is not None else text, stop is not None)


@torch.no_grad()
def generate(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int, batch_size: int,
             repetition_penalty: float | None = None,
             constraint: Callable[[int, list[int]], Callable] | None = None,
             desc: str = "generating") -> list[Generated]:
    """Greedy answers to chat prompts, batched with left padding (prompts of similar length together).

    `constraint(prompt_length, rows)` may return a prefix_allowed_tokens_fn for a batch of the prompts
    at indices `rows` (grounded decoding). The checkpoint's own repetition penalty is overridden (1.0)
    unless one is given: it would push the model away from repeating a DOI it has just read.
    An encoder-decoder answers through seq2seq_generation (no chat template, no prompt to slice off).
    """
    if getattr(model.config, "is_encoder_decoder", False):
        from citetune.seq2seq_generation import generate_seq2seq

        return generate_seq2seq(model, tokenizer, prompts, max_new_tokens, batch_size, repetition_penalty,
                                constraint, desc)
    tokenizer.padding_side = "left"
    texts = [render_prompt(tokenizer, p) for p in prompts]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    ends = end_token_ids(model, tokenizer)
    results: list[Generated] = [Generated("", False)] * len(texts)
    model.eval()
    device = next(model.parameters()).device
    for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch"):
        idx = order[start:start + batch_size]
        enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True,
                        add_special_tokens=False).to(device)
        prompt_length = enc["input_ids"].shape[1]
        extra = {"prefix_allowed_tokens_fn": constraint(prompt_length, idx)} if constraint else {}
        out = model.generate(
            **enc, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
            temperature=1.0, top_p=1.0, repetition_penalty=repetition_penalty or 1.0, no_repeat_ngram_size=0,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=ends, **extra)
        for i, ids in zip(idx, out[:, prompt_length:].tolist()):
            results[i] = as_generated(tokenizer, ids, ends)
    return results


def grounded_decoding(tokenizer, model, library: list[dict], answer_format: str = "text"):
    """Decoding restricted to whole lines of the library's works or the abstention, in the answer
    format (built once per model: it reads the whole vocabulary)."""
    from citetune.grounding import Frame, GroundedDecoding

    fixed = frame(answer_format)
    return GroundedDecoding(tokenizer, [work_line(w, answer_format) for w in library],
                            exclusive=[abstention(answer_format)], end_token_ids=end_token_ids(model, tokenizer),
                            frame=Frame(*fixed) if fixed else None)


def grounded_constraint(decoding, library: list[dict], records: list[dict], answer_format: str = "text"):
    """The constraint generate() takes for `records`: any library line, or in retrieval mode the lines of
    the row's own candidates; the abstention is open to every row."""
    lines = {w["doi"].lower(): work_line(w, answer_format) for w in library}

    def constraint(prompt_length: int, rows: list[int]):
        per_row = None
        if records[rows[0]]["mode"] == "retrieval":
            per_row = [[lines[d] for d in records[i].get("candidates", []) if d in lines] for i in rows]
        return decoding.allowed_tokens_fn(prompt_length, per_row)

    return constraint
