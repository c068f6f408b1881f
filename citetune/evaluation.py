"""Evaluate base vs tuned: greedy answers to the SFT questions, DOIs pulled out of them, scored.

The scores: exact match (the answer's DOI set is the gold set), recall of gold DOIs, the share of
answers that contain a DOI found nowhere among the known (matched) DOIs, i.e. a fabricated one,
and the share of answers with any DOI at all.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from tqdm import tqdm

from citetune.errors import StageError
from citetune.ids import extract_dois
from citetune.io import read_csv, read_jsonl
from citetune.models import load_base, load_tokenizer, pick_device

log = logging.getLogger(__name__)

def score(rows: list[dict], known: set[str]) -> dict:
    """Scores of a list of {'dois': gold, 'predicted': [...]} rows; known: every DOI that really exists."""
    n = len(rows)
    if n == 0:
        return {"n": 0, "doi_exact_match": None, "doi_recall": None, "fabricated_rate": None, "answered_rate": None}
    gold_total = sum(len(set(r["dois"])) for r in rows)
    hits = sum(len(set(r["dois"]) & set(r["predicted"])) for r in rows)
    return {
        "n": n,
        "doi_exact_match": sum(set(r["predicted"]) == set(r["dois"]) for r in rows) / n,
        "doi_recall": hits / gold_total if gold_total else None,
        "fabricated_rate": sum(any(d not in known for d in r["predicted"]) for r in rows) / n,
        "answered_rate": sum(bool(r["predicted"]) for r in rows) / n,
    }


def known_dois(references_csv: str | Path, records: list[dict] = ()) -> set[str]:
    """DOIs known to exist: matched references of the match stage, plus the gold DOIs of the SFT records."""
    path = Path(references_csv)
    if not path.exists():
        raise StageError(f"{path} not found: run the match stage first (dvc repro match)")
    df = read_csv(path)
    missing = {"doi", "match_status"} - set(df.columns)
    if missing:
        raise StageError(f"{path} lacks column(s) {', '.join(sorted(missing))}: rerun the match stage")
    known = {d.strip().lower() for d in df.loc[df["match_status"] == "matched", "doi"] if d.strip()}
    return known | {d.lower() for r in records for d in r.get("dois", [])}


@torch.no_grad()
def generate(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int, batch_size: int,
             desc: str = "generating") -> list[str]:
    """Greedy answers to chat prompts, batched with left padding (shortest prompts batched together)."""
    tokenizer.padding_side = "left"
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    answers: list[str] = [""] * len(texts)
    model.eval()
    device = next(model.parameters()).device
    for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch"):
        idx = order[start:start + batch_size]
        enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True,
                        add_special_tokens=False).to(device)
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        decoded = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        for i, text in zip(idx, decoded):
            answers[i] = text.strip()
    return answers


def _is_question(rec) -> bool:
    msgs = rec.get("messages") if isinstance(rec, dict) else None
    return (isinstance(msgs, list) and len(msgs) >= 2 and all(isinstance(m, dict) for m in msgs)
            and msgs[-1].get("role") == "assistant" and isinstance(rec.get("dois"), list))


def load_questions(sft_dir: str | Path, splits: list[str]) -> dict[str, list[dict]]:
    """The SFT records of each split; records that are not a question + answer are left out (logged)."""
    data = {}
    for split in splits:
        path = Path(sft_dir) / f"{split}.jsonl"
        if not path.exists():
            raise StageError(f"{path} not found: run the qa stage first, or drop '{split}' from evaluate.splits")
        try:
            rows = read_jsonl(path)
        except ValueError as e:
            raise StageError(f"{e}: rerun the qa stage to rewrite it") from e
        good = [r for r in rows if _is_question(r)]
        if len(good) < len(rows):
            log.warning("%s: %d record(s) without a question and an assistant answer left out",
                        path, len(rows) - len(good))
        data[split] = good
    return data


def _answer_all(model, tokenizer, data: dict[str, list[dict]], label: str, known: set[str],
                max_new_tokens: int, batch_size: int) -> tuple[dict, list[dict]]:
    metrics, predictions = {}, []
    for split, records in data.items():
        start = time.monotonic()
        answers = generate(model, tokenizer, [r["messages"][:-1] for r in records], max_new_tokens,
                           batch_size, desc=f"{label}/{split}")
        rows = []
        for rec, answer in zip(records, answers):
            predicted = extract_dois(answer)
            gold = [d.lower() for d in rec.get("dois", [])]
            rows.append({"id": rec.get("id"), "split": split, "model": label,
                         "question": rec["messages"][-2]["content"], "dois": gold, "answer": answer,
                         "predicted": predicted, "exact": set(predicted) == set(gold)})
        metrics[split] = score(rows, known) | {"seconds": round(time.monotonic() - start, 1)}
        predictions.extend(rows)
        log.info("%s/%s: %s", label, split, {k: v for k, v in metrics[split].items() if k != "seconds"})
    return metrics, predictions


def evaluate(base_dir: str | Path, adapter_dir: str | Path, sft_dir: str | Path, references_csv: str | Path,
             splits: list[str], quantization: str = "none", max_new_tokens: int = 96, batch_size: int = 16,
             device: str | None = None) -> tuple[dict, list[dict], list[dict]]:
    """Answer every question of `splits` with the base model and with base + adapter.

    Returns (metrics {'base': {split: scores}, 'tuned': ...}, prediction rows, bar-plot rows).
    """
    from peft import PeftModel

    device = device or pick_device()
    if not (Path(adapter_dir) / "adapter_config.json").exists():
        raise StageError(f"no adapter in {adapter_dir}: run the train stage first (dvc repro train)")
    data = load_questions(sft_dir, splits)
    known = known_dois(references_csv, [r for rows in data.values() for r in rows])
    model = load_base(base_dir, quantization, device)
    tokenizer = load_tokenizer(base_dir)
    metrics, predictions = {}, []
    metrics["base"], rows = _answer_all(model, tokenizer, data, "base", known, max_new_tokens, batch_size)
    predictions += rows
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    metrics["tuned"], rows = _answer_all(model, tokenizer, data, "tuned", known, max_new_tokens, batch_size)
    predictions += rows
    plot = [{"model": f"{label}/{split}", "exact_match": m["doi_exact_match"], "fabricated_rate": m["fabricated_rate"]}
            for label, per_split in metrics.items() for split, m in per_split.items()]
    return metrics, predictions, plot
