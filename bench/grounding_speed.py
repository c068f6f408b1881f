"""Grounded decoding's cost per generation step, with a large line set and a real-sized vocabulary.

Trains a byte-level BPE tokenizer (--vocab tokens) on up to 100,000 of N generated work lines, builds the constraint
over all of them, then writes random valid answers token by token (each step picks one of the
allowed tokens at random, as sampling would) and prints the time `prefix_allowed_tokens_fn` takes per
step: over the whole index and with each row restricted to the 30 candidates of its prompt.
No model runs: this is the overhead added to each step of `generate`, per row.

    python bench/grounding_speed.py [--n 100000] [--vocab 32000] [--answers 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from citetune.grounding import GroundedDecoding, token_bytes
from citetune.tiny_model import paper_texts

ABSTAIN = "No verified work supports this claim."


def work_lines(n: int, rng: random.Random) -> list[str]:
    """N distinct lines like `- Title (year). DOI: 10.x/y`, titles drawn from the sample corpus's words."""
    words = sorted({w.strip(".,;:()[]\"'") for t in paper_texts() for w in t.split()} - {""})
    words += ["Über", "Körper", "théorie", "Modèle", "naïve"]
    lines: set[str] = set()
    while len(lines) < n:
        title = " ".join(rng.choice(words) for _ in range(rng.randint(3, 10))).capitalize()
        doi = f"10.{rng.randint(1000, 99999)}/{rng.choice(['arXiv.', 'j.', '', 'S'])}{rng.randint(1, 10**8)}"
        lines.add(f"- {title} ({rng.randint(1900, 2025)}). DOI: {doi}")
    return sorted(lines)


def tokenizer_for(lines: list[str], vocab: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(lines + paper_texts(), trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=["<pad>", "<eos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>")


def step_times(fn, eos: int, answers: int, rng: random.Random, rows: int = 1) -> tuple[list[float], int]:
    """Seconds per call of `fn` while writing random valid answers; and the longest answer in tokens."""
    times, longest = [], 0
    for a in range(answers):
        ids = [0]
        while ids[-1] != eos:
            t = time.perf_counter()
            allowed = fn(a % rows, torch.tensor(ids))
            times.append(time.perf_counter() - t)
            ids.append(rng.choice(allowed) if rng.random() < 0.9 or eos not in allowed else eos)
        longest = max(longest, len(ids))
    return times, longest


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def report(name: str, times: list[float]) -> None:
    ms = sorted(t * 1000 for t in times)
    print(f"{name}: {len(ms)} steps, median {statistics.median(ms):.3f} ms, mean {statistics.fmean(ms):.3f} ms, "
          f"p99 {ms[int(len(ms) * 0.99)]:.2f} ms, max {ms[-1]:.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--vocab", type=int, default=32_000)
    ap.add_argument("--answers", type=int, default=200)
    args = ap.parse_args()
    rng = random.Random(0)
    lines = work_lines(args.n, rng)
    t = time.perf_counter()
    tokenizer = tokenizer_for(lines[:100_000], args.vocab)
    print(f"tokenizer: {len(tokenizer)} tokens, trained in {time.perf_counter() - t:.1f} s")
    rss = rss_mib()
    t = time.perf_counter()
    pieces = token_bytes(tokenizer)
    print(f"token_bytes: {time.perf_counter() - t:.2f} s")
    t = time.perf_counter()
    grounded = GroundedDecoding(tokenizer, lines, exclusive=[ABSTAIN], pieces=pieces)
    print(f"constraint over {len(grounded.line_set)} lines built in {time.perf_counter() - t:.2f} s, "
          f"RSS +{rss_mib() - rss:.0f} MiB (token pieces and line index)")
    eos = tokenizer.eos_token_id

    times, longest = step_times(grounded.allowed_tokens_fn(1), eos, args.answers, rng)
    report(f"whole index, fresh cache (answers up to {longest} tokens)", times)
    print(f"  first step (empty answer): {times[0] * 1000:.1f} ms; second: {times[1] * 1000:.1f} ms")

    rows = [rng.sample(lines, 30) for _ in range(8)]
    times, _ = step_times(grounded.allowed_tokens_fn(1, rows), eos, args.answers, rng, rows=len(rows))
    report("8 rows of 30 candidates each", times)


if __name__ == "__main__":
    main()
