"""Question–answer pairs from matched citing sentences, in chat `messages` form, split without leakage."""

from __future__ import annotations

import hashlib
import random
import re

import pandas as pd

QUESTION_TEMPLATES = [
    'Which work supports this statement? "{context}"',
    "Cite the paper behind this claim, with its DOI: {context}",
    'What is the source for the following sentence? "{context}"',
    "Give the reference (title, year, DOI) for: {context}",
]
SPLITS = ("train", "validation", "test")


def _unit_hash(text: str, seed: int) -> float:
    """A stable number in [0, 1) for a text: the same sentence always lands in the same split."""
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(context: str, seed: int, validation_fraction: float, test_fraction: float) -> str:
    # Keyed by the normalised sentence, not its position, so identical sentences from two papers
    # share a split and adding papers never moves an existing pair to another split.
    u = _unit_hash(re.sub(r"\s+", " ", context.lower()).strip(), seed)
    if u < test_fraction:
        return "test"
    if u < test_fraction + validation_fraction:
        return "validation"
    return "train"


def format_answer(works: list[dict]) -> str:
    return "\n".join(f"- {w['title']} ({w['year']}). DOI: {w['doi']}" for w in works)


def build_pairs(citations: pd.DataFrame, references: pd.DataFrame, params) -> tuple[list[dict], dict]:
    """One pair per citing sentence with at least one matched DOI; returns (pairs, counts)."""
    matched = references[references["match_status"].eq("matched")]
    work_by_key = {
        r.ref_key: {"doi": r.doi, "title": r.match_title or r.ref_title, "year": r.match_year or r.ref_year}
        for r in matched.itertuples()
    }
    pairs, skipped_no_doi, skipped_partial, partial = [], 0, 0, 0
    for (paper_id, sentence_id), rows in citations.groupby(["paper_id", "sentence_id"], sort=False):
        works, seen = [], set()
        for key in rows["ref_key"]:
            work = work_by_key.get(key)
            if work and work["doi"].lower() not in seen:  # DOIs are case-insensitive
                seen.add(work["doi"].lower())
                works.append(work)
        unmatched = rows["ref_key"].map(lambda k: k not in work_by_key).sum()
        if not works:
            skipped_no_doi += 1
            continue
        if unmatched:
            if params.require_all_matched:
                skipped_partial += 1
                continue
            partial += 1
        pair_id = f"{paper_id}:{sentence_id}"
        context = rows["context"].iloc[0]
        template = random.Random(f"{params.seed}:{pair_id}").randrange(len(QUESTION_TEMPLATES))
        pairs.append({
            "id": pair_id,
            "paper_id": paper_id,
            "sentence_id": sentence_id,
            "split": split_of(context, params.seed, params.validation_fraction, params.test_fraction),
            "template": template,
            "messages": [
                {"role": "system", "content": params.system_prompt.strip()},
                {"role": "user", "content": QUESTION_TEMPLATES[template].format(context=context)},
                {"role": "assistant", "content": format_answer(works)},
            ],
            "dois": [w["doi"].lower() for w in works],
        })
    counts = {
        "sentences": int(citations[["paper_id", "sentence_id"]].drop_duplicates().shape[0]),
        "pairs": len(pairs),
        "skipped_no_matched_doi": skipped_no_doi,
        "skipped_partially_matched": skipped_partial,
        "pairs_with_unmatched_references": partial,
    }
    return pairs, counts


def qa_metrics(pairs: list[dict], counts: dict) -> dict:
    by_split = {s: [p for p in pairs if p["split"] == s] for s in SPLITS}
    train_dois = {d for p in by_split["train"] for d in p["dois"]}
    test_dois = {d for p in by_split["test"] for d in p["dois"]}
    return counts | {
        "pairs_by_split": {s: len(v) for s, v in by_split.items()},
        "unique_dois": len({d for p in pairs for d in p["dois"]}),
        "test_dois_unseen_in_train": len(test_dois - train_dois),
        "dois_per_pair": round(sum(len(p["dois"]) for p in pairs) / max(len(pairs), 1), 3),
    }


def dataset_card(metrics: dict, params) -> str:
    splits = metrics["pairs_by_split"]
    examples = "\n".join(f"- `{t}`" for t in QUESTION_TEMPLATES)
    return f"""# citetune SFT set

Question–answer pairs that teach a language model to name the works behind a scientific
claim, each with its verified DOI. Built by citetune's `qa` stage from citing sentences
extracted from papers, whose references were matched to DOIs through Crossref metadata
and validated (title, year, first author).

| split | pairs |
|---|---|
| train | {splits['train']} |
| validation | {splits['validation']} |
| test | {splits['test']} |

{metrics['unique_dois']} distinct DOIs; {metrics['dois_per_pair']} DOIs per answer on average;
{metrics['test_dois_unseen_in_train']} DOIs of the test split never appear in train.
{metrics['skipped_no_matched_doi']} citing sentences had no matched reference and were left out.

## Format
One JSON object per line: `id` (`<paper_id>:<sentence_id>`), `paper_id`, `sentence_id`,
`split`, `template`, `messages` (system, user, assistant) and `dois` (the gold DOIs,
lower-case). The user turn is one of these templates, chosen per pair with seed {params.seed}:

{examples}

The assistant turn lists each cited work as `- <title> (<year>). DOI: <doi>`.

## Splits
A pair's split is a hash of its normalised sentence (seed {params.seed}): the same sentence
never appears in two splits, and adding papers never moves an existing pair.

## Caveats
The claims are the citing authors' wording, not the cited papers'. Only references that
could be matched to a DOI are used; a sentence whose other references could not be matched
still appears, with the matched ones only, unless `qa.require_all_matched` is set.
"""
