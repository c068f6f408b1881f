"""Ask the tuned model: a claim in, the works that support it out, each DOI verified.

The model answers as it was trained: with candidate works retrieved from the library (retrieval mode)
or from memory (closed_book), in the answer format it was taught (text or json), and, when grounded,
with decoding restricted to the library's works.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from citetune.answers import format_answer, parse_answer, work_line
from citetune.generation import (
    answer_budget,
    generate,
    grounded_constraint,
    grounded_decoding,
)
from citetune.qa import QUESTION_TEMPLATES, retrieval_prompt, system_message
from citetune.sft import load_library, load_training_claims
from citetune.verification import Verdict


@dataclass
class Reply:
    claim: str
    answer: str
    abstained: bool
    works: list[Verdict]
    candidates: list[dict]
    malformed: bool = False  # json: the answer is not the schema's


class Assistant:
    def __init__(self, base_dir: str | Path, adapter_dir: str | Path, sft_dir: str | Path, verifier, system_prompt: str,
                 mode: str = "retrieval", grounded: bool = True, candidates: int = 5, quantization: str = "none",
                 batch_size: int = 8, repetition_penalty: float | None = None, device: str | None = None,
                 answer_format: str = "text"):
        from citetune.models import (
            load_base,
            load_tokenizer,
            load_tuned,
            pick_device,
            require_adapter,
        )
        from citetune.retrieval import WorkRetriever

        require_adapter(adapter_dir)
        self.library = load_library(sft_dir)
        self.retriever = WorkRetriever(self.library, load_training_claims(sft_dir)) if mode == "retrieval" else None
        self.verifier, self.mode, self.answer_format = verifier, mode, answer_format
        self.system = system_message(system_prompt, answer_format)
        self.candidates, self.batch_size, self.repetition_penalty = candidates, batch_size, repetition_penalty
        self.tokenizer = load_tokenizer(base_dir)
        device = device or pick_device()
        self.model = load_tuned(load_base(base_dir, quantization, device), adapter_dir, quantization, device)
        self.decoding = (grounded_decoding(self.tokenizer, self.model, self.library, answer_format)
                         if grounded else None)
        # An answer citing as many works as there are candidates, the longest ones: enough for any answer.
        longest = sorted(self.library, key=lambda w: len(work_line(w, answer_format)))[-max(candidates, 1):]
        self.budget = answer_budget(self.tokenizer, [format_answer(longest, answer_format)])

    def _record(self, claim: str) -> dict:
        question = QUESTION_TEMPLATES[0].format(context=claim)
        record = {"claim": claim, "mode": self.mode, "candidates": []}
        shown = []
        if self.retriever is not None:
            shown = [w for w, _ in self.retriever.search(claim, self.candidates)]
            question = retrieval_prompt(question, shown, self.answer_format)
            record["candidates"] = [w["doi"].lower() for w in shown]
        record["messages"] = [{"role": "system", "content": self.system}, {"role": "user", "content": question}]
        return record | {"shown": shown}

    def ask(self, claims: list[str]) -> list[Reply]:
        records = [self._record(c) for c in claims]
        constraint = (grounded_constraint(self.decoding, self.library, records, self.answer_format)
                      if self.decoding else None)
        answers = generate(self.model, self.tokenizer, [r["messages"] for r in records], self.budget,
                           self.batch_size, self.repetition_penalty, constraint, desc="answering")
        replies = []
        for rec, answer in zip(records, answers):
            parsed = parse_answer(answer.text, answer.finished, self.answer_format)
            replies.append(Reply(rec["claim"], answer.text, parsed.abstained,
                                 [self.verifier.verify(c) for c in parsed.cited], rec["shown"], parsed.malformed))
        return replies

