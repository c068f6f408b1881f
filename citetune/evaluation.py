"""Evaluate the assistant beside baselines that use no model, every cited DOI verified.

Systems, each answering every claim of the evaluated splits:
- base: the base model, closed-book;
- lookup: the DOIs of the most word-overlapping training claim (no model; on train it finds the claim
  itself: what memorising the training set gets);
- bm25: the best works BM25 finds in the library (no model);
- tuned/<mode>: base + adapter, in each mode the adapter was trained on (closed_book, retrieval);
- tuned/<mode>/grounded: the same, decoding restricted to whole lines of the library's works
  (retrieval: of the candidates in the prompt) or the abstention line: no DOI can be invented.
Every DOI is checked with the match backend (verification.py): the scores are exact match and recall
of the gold works on supported claims, the share of answers citing a DOI that names no work
(fabricated), a real but wrong work, a title not the DOI's (mismatched), and abstention precision
and recall on the claims the model was taught to abstain on (no library work supports them, or in
retrieval mode none of the candidates shown does). Every system answers in the format the adapter was
taught (answers.py); a JSON answer that is not the schema's is malformed: never exact, though its
DOIs are still verified.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from citetune.answers import (
    adapter_format,
    answer_format_of,
    format_answer,
    parse_answer,
)
from citetune.errors import StageError
from citetune.generation import (
    Generated,
    answer_budget,
    generate,
    grounded_constraint,
    grounded_decoding,
)
from citetune.sft import load_library, load_records, load_training_claims

log = logging.getLogger(__name__)


# --- scores ----------------------------------------------------------------------------------------

def prediction_row(rec: dict, answer: Generated, system: str, verifier, answer_format: str = "text") -> dict:
    """A prediction row: the answer parsed, each cited DOI verified, and whether it is exactly right."""
    parsed = parse_answer(answer.text, answer.finished, answer_format)
    gold = [d.lower() for d in rec["dois"]]
    verdicts = [verifier.verify(c, gold) for c in parsed.cited]
    right = {v.gold for v in verdicts if v.status == "right"}
    exact = not parsed.malformed and (parsed.abstained if not gold
                                      else all(v.status == "right" for v in verdicts) and right == set(gold))
    return {"id": rec["id"], "split": rec["split"], "system": system, "claim": rec["claim"],
            "dois": gold, "abstain_gold": bool(rec.get("abstain", not gold)), "answer": answer.text,
            "predicted": [v.doi for v in verdicts],  # as verified: text glued after a DOI taken off
            "verdicts": [{"doi": v.doi, "status": v.status, "title_agrees": v.title_agrees, "gold": v.gold}
                         for v in verdicts],
            "abstained": parsed.abstained, "truncated": parsed.truncated, "malformed": parsed.malformed,
            "exact": exact}


def _share(rows: list[dict], hit: Callable[[dict], bool]) -> float | None:
    return sum(map(hit, rows)) / len(rows) if rows else None


def score(rows: list[dict]) -> dict:
    """The scores of prediction rows (prediction_row's)."""
    supported = [r for r in rows if r["dois"]]
    unsupported = [r for r in rows if not r["dois"]]
    # What the model was taught to abstain on: no library work supports the claim, or (retrieval) none
    # of the works that support it is among the candidates shown.
    should_abstain = [r for r in rows if r["abstain_gold"]]
    abstained = [r for r in rows if r["abstained"]]
    gold_total = sum(len(r["dois"]) for r in supported)
    found = sum(len({v["gold"] for v in r["verdicts"] if v["status"] == "right"}) for r in supported)
    any_status = lambda status: lambda r: any(v["status"] == status for v in r["verdicts"])  # noqa: E731
    return {
        "n": len(rows), "supported": len(supported), "unsupported": len(unsupported),
        "abstain_gold": len(should_abstain),
        "doi_exact_match": _share(supported, lambda r: r["exact"]),
        "doi_recall": found / gold_total if gold_total else None,
        "fabricated_rate": _share(rows, any_status("fabricated")),
        "wrong_rate": _share(rows, any_status("wrong")),
        "mismatched_rate": _share(rows, lambda r: any(v["title_agrees"] is False for v in r["verdicts"])),
        "answered_rate": _share(rows, lambda r: bool(r["predicted"])),
        "abstention_precision": _share(abstained, lambda r: r["abstain_gold"]),
        "abstention_recall": _share(should_abstain, lambda r: r["abstained"]),
        "truncated_rate": _share(rows, lambda r: r["truncated"]),
        "malformed_rate": _share(rows, lambda r: r["malformed"]),
        "unverified": sum(v["status"] == "unverified" for r in rows for v in r["verdicts"]),
    }


# --- systems ---------------------------------------------------------------------------------------

def baseline_answers(system: str, records: list[dict], library: list[dict], claims: list[tuple[str, list[str]]],
                     answer_format: str = "text") -> list[Generated]:
    """The answers of a no-model system ('lookup' or 'bm25') to the records, as the library's lines."""
    from citetune.retrieval import OverlapLookup, WorkRetriever, bm25_answer

    by_doi = {w["doi"].lower(): w for w in library}
    if system == "lookup":
        dois = map(OverlapLookup(claims).answer, (r["claim"] for r in records))
    else:
        retriever = WorkRetriever(library, claims)
        dois = (bm25_answer(retriever, r["claim"]) for r in records)
    return [Generated(format_answer([by_doi[d] for d in found if d in by_doi], answer_format), True)
            for found in dois]


class Evaluation:
    """Runs the systems over the splits, collecting prediction rows and metrics {system: {split: scores}}."""

    def __init__(self, data: dict[str, list[dict]], verifier, params, judge_cache: str | Path | None = None,
                 answer_format: str = "text"):
        self.data, self.verifier, self.params, self.judge_cache = data, verifier, params, judge_cache
        self.answer_format = answer_format
        self.metrics: dict[str, dict] = {}
        self.predictions: list[dict] = []
        self.max_new_tokens: int | None = None

    def add(self, system: str, answer: Callable[[list[dict], str], list[Generated]], mode: str | None = None):
        for split, records in self.data.items():
            chosen = [r for r in records if mode is None or r["mode"] == mode]
            if mode is None:  # baselines answer each claim once, whatever the modes (the first mode's record)
                first: dict[str, dict] = {}
                for r in chosen:
                    first.setdefault(r["id"], r)
                chosen = list(first.values())
            start = time.monotonic()
            rows = [prediction_row(r, a, system, self.verifier, self.answer_format)
                    for r, a in zip(chosen, answer(chosen, split))]
            quality = self.answer_quality(chosen, rows)
            self.metrics.setdefault(system, {})[split] = (score(rows) | quality
                                                          | {"seconds": round(time.monotonic() - start, 1)})
            self.predictions += rows
            log.info("%s/%s: exact %s, fabricated %s", system, split, self.metrics[system][split]["doi_exact_match"],
                     self.metrics[system][split]["fabricated_rate"])

    def answer_quality(self, records: list[dict], rows: list[dict]) -> dict:
        """The optional scores of the answers against the gold answers (judges.py); each row gets its own."""
        from citetune import judges

        judge, similarity = self.params.judge, self.params.similarity
        texts = [{"question": r["messages"][-2]["content"], "gold": r["messages"][-1]["content"], "answer": p["answer"]}
                 for r, p in zip(records, rows)]
        scores = {}
        if judge.enabled:
            scores["judge"] = judges.judge_answers(
                texts, judge.base_url, judge.model, judge.api_key_env, self.judge_cache, workers=judge.workers,
                request_timeout=judge.timeout_seconds, deadline_s=judge.deadline_seconds)
        if similarity.embedding:
            scores["embedding_similarity"] = judges.embedding_similarity(texts, similarity.embedding_model or None)
        if similarity.cross_encoder:
            scores["cross_encoder"] = judges.cross_encoder_score(texts, similarity.cross_encoder)
        out = {}
        for name, result in scores.items():
            out[name] = result["mean"]
            if "unscored" in result:
                out[f"{name}_unscored"] = result["unscored"]
            for row, one in zip(rows, result["per_row"]):
                row[name] = one.get("score") if isinstance(one, dict) else one
        return out

    def plot(self) -> list[dict]:
        return [{"system": f"{system}/{split}", "exact_match": m["doi_exact_match"],
                 "fabricated_rate": m["fabricated_rate"]}
                for system, per_split in self.metrics.items() for split, m in per_split.items()]


def evaluate(base_dir: str | Path, adapter_dir: str | Path, sft_dir: str | Path, verifier, params,
             quantization: str = "none", device: str | None = None,
             judge_cache: str | Path | None = None) -> Evaluation:
    """Answer every claim of params.splits with each system; see the module's docstring."""
    from citetune.models import (
        load_base,
        load_tokenizer,
        load_tuned,
        pick_device,
        require_adapter,
    )

    device = device or pick_device()
    require_adapter(adapter_dir)
    data = load_records(sft_dir, params.splits)
    if not any(data.values()):
        raise StageError(f"{sft_dir}: no records in the splits {', '.join(params.splits)}: rerun the qa stage, "
                         "or choose other evaluate.splits")
    answer_format = adapter_format(adapter_dir)
    try:
        taught = answer_format_of(r["messages"][-1]["content"] for rows in data.values() for r in rows)
    except ValueError as e:
        raise StageError(f"{sft_dir}: {e}") from e
    if taught != answer_format:
        raise StageError(f"{adapter_dir} was trained to answer in {answer_format}, but {sft_dir} holds {taught} "
                         "answers: retrain (dvc repro train), or rerun qa with the adapter's qa.answer_format")
    library, claims = load_library(sft_dir), load_training_claims(sft_dir)
    run = Evaluation(data, verifier, params, judge_cache, answer_format)

    for system in ("lookup", "bm25"):
        run.add(system, lambda records, split, system=system: baseline_answers(system, records, library, claims,
                                                                               answer_format))

    model, tokenizer = load_base(base_dir, quantization, device), load_tokenizer(base_dir)
    gold_answers = [r["messages"][-1]["content"] for rows in data.values() for r in rows]
    budget = params.max_new_tokens or answer_budget(tokenizer, gold_answers)
    modes = sorted({r["mode"] for rows in data.values() for r in rows})

    decoding = grounded_decoding(tokenizer, model, library, answer_format) if params.grounded else None

    def answers_of(constrained: bool = False):
        def answer(records, split):
            constraint = grounded_constraint(decoding, library, records, answer_format) if constrained else None
            return generate(model, tokenizer, [r["messages"][:-1] for r in records], budget, params.batch_size,
                            params.repetition_penalty, constraint, desc=split)
        return answer

    run.add("base", answers_of(), mode="closed_book" if "closed_book" in modes else modes[0])
    model = load_tuned(model, adapter_dir, quantization, device)
    for mode in modes:
        run.add(f"tuned/{mode}", answers_of(), mode=mode)
        if params.grounded:
            run.add(f"tuned/{mode}/grounded", answers_of(constrained=True), mode=mode)
    run.max_new_tokens = budget
    return run
