"""Reading the qa stage's output: the SFT records of a split, the library of verified works, and
the training claims that retrieval and the lookup draw on. Shared by evaluate and ask."""

from __future__ import annotations

import logging
from pathlib import Path

from citetune.errors import StageError
from citetune.io import read_jsonl
from citetune.retrieval import TrainClaim, training_claims

log = logging.getLogger(__name__)


def _is_question(rec) -> bool:
    msgs = rec.get("messages") if isinstance(rec, dict) else None
    return (isinstance(msgs, list) and len(msgs) >= 2 and all(isinstance(m, dict) for m in msgs)
            and msgs[-1].get("role") == "assistant" and isinstance(rec.get("dois"), list))


def load_records(sft_dir: str | Path, splits: list[str]) -> dict[str, list[dict]]:
    """The SFT records of each split; records that are not a question + answer are left out (logged).
    Records of an older qa (no mode, no claim) read as closed-book, their question as the claim."""
    data = {}
    for split in splits:
        path = Path(sft_dir) / f"{split}.jsonl"
        if not path.exists():
            raise StageError(f"{path} not found: run the qa stage first, or drop '{split}' from evaluate.splits")
        try:
            rows = read_jsonl(path)
        except ValueError as e:
            raise StageError(f"{e}: rerun the qa stage to rewrite it") from e
        good = [{"split": split, "id": r.get("id") or f"{split}:{i}"} | r
                | {"mode": r.get("mode", "closed_book"), "claim": r.get("claim") or r["messages"][-2]["content"]}
                for i, r in enumerate(rows) if _is_question(r)]
        if len(good) < len(rows):
            log.warning("%s: %d record(s) without a question and an assistant answer left out",
                        path, len(rows) - len(good))
        data[split] = good
    return data


def load_library(sft_dir: str | Path) -> list[dict]:
    path = Path(sft_dir) / "works.jsonl"
    if not path.exists():
        raise StageError(f"{path} not found: rerun the qa stage (dvc repro qa)")
    return read_jsonl(path)


def load_training_claims(sft_dir: str | Path) -> list[TrainClaim]:
    return training_claims(load_records(sft_dir, ["train"])["train"])
