"""Question–answer pairs from matched citing sentences, in chat `messages` form, split without leakage.

Each citing sentence is a claim; its answer cites the verified works of the assistant's library that
the sentence cites, or abstains (answers.ABSTAIN) when none of them is in the library: its references
could not be matched, or their works are held out of the library (qa.holdout_works) so that the model
meets claims it has no verified work for. The answers are in qa.answer_format (answers.py: text lines,
or JSON that follows schemas/answer.schema.json). Two modes, one record each per claim:
- closed_book: the claim alone; the model answers from what it learned;
- retrieval: the claim and candidate works retrieved for it (BM25 over the library, retrieval.py);
  the model cites among them or abstains. In train, the gold works are sometimes left out of the
  candidates, so that the model learns to abstain rather than to pick a distractor (RAFT).
"""

from __future__ import annotations

import hashlib
import random
import re

import pandas as pd

from citetune.answers import (
    ABSTAIN,
    ANSWER_SCHEMA,
    JSON_ABSTAIN,
    format_answer,
    work_line,
)

QUESTION_TEMPLATES = [
    'Which work supports this statement? "{context}"',
    "Cite the paper behind this claim, with its DOI: {context}",
    'What is the source for the following sentence? "{context}"',
    "Give the reference (title, year, DOI) for: {context}",
]
CANDIDATES_HEADER = "Candidate works (cite only from these):"
SPLITS = ("train", "validation", "test")
MODES = ("closed_book", "retrieval")


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


def held_out(doi: str, seed: int, fraction: float) -> bool:
    """Whether a work is kept out of the library: by its DOI's hash, so the choice never moves."""
    return _unit_hash(f"holdout:{doi.lower()}", seed) < fraction


def verified_works(references: pd.DataFrame) -> tuple[dict[str, dict], dict[str, dict]]:
    """({lower-case DOI: work}, {ref_key: the same work}) of the matched references: one work per DOI,
    so that a claim's answer line is always its library line."""
    matched = references[references["match_status"].eq("matched") & references["doi"].astype(str).str.strip().ne("")]
    works: dict[str, dict] = {}
    by_key: dict[str, dict] = {}
    for r in matched.itertuples():
        doi = str(r.doi).strip()
        work = works.setdefault(doi.lower(), {"doi": doi, "title": r.match_title or r.ref_title,
                                              "year": r.match_year or r.ref_year})
        by_key[r.ref_key] = work
    return works, by_key


def build_claims(citations: pd.DataFrame, references: pd.DataFrame, params) -> tuple[list[dict], list[dict], dict]:
    """One claim per citing sentence, with the library's works it cites; returns (claims, library, counts).
    The library is the verified works less those held out (qa.holdout_works)."""
    works, work_by_key = verified_works(references)
    library = [w for d, w in works.items() if not held_out(d, params.seed, params.holdout_works)]
    in_library = {w["doi"].lower() for w in library}
    claims, counts = [], {"skipped_partially_matched": 0, "abstain_unmatched": 0, "abstain_held_out": 0,
                          "claims_with_unmatched_references": 0}
    for (paper_id, sentence_id), rows in citations.groupby(["paper_id", "sentence_id"], sort=False):
        cited = [work_by_key.get(k) for k in rows["ref_key"]]
        unmatched = sum(w is None for w in cited)
        if unmatched and params.require_all_matched and unmatched < len(cited):
            counts["skipped_partially_matched"] += 1
            continue
        cites = list({w["doi"].lower(): w for w in cited if w and w["doi"].lower() in in_library}.values())
        if not cites:
            counts["abstain_unmatched" if unmatched == len(cited) else "abstain_held_out"] += 1
        elif unmatched:
            counts["claims_with_unmatched_references"] += 1
        context = rows["context"].iloc[0]
        claims.append({"id": f"{paper_id}:{sentence_id}", "paper_id": paper_id, "sentence_id": sentence_id,
                       "claim": context, "works": cites, "dois": [w["doi"].lower() for w in cites],
                       "split": split_of(context, params.seed, params.validation_fraction, params.test_fraction)})
    counts |= {"sentences": int(citations[["paper_id", "sentence_id"]].drop_duplicates().shape[0]),
               "library_works": len(library), "held_out_works": len(works) - len(library)}
    return claims, library, counts


def retrieval_prompt(question: str, candidates: list[dict], answer_format: str = "text") -> str:
    """The question and the candidates, each as the line an answer citing it would hold."""
    listed = "\n".join(work_line(w, answer_format) for w in candidates)
    return f"{question}\n\n{CANDIDATES_HEADER}\n{listed}"


def system_message(system_prompt: str, answer_format: str = "text") -> str:
    """The system turn: the prompt of params, and in json the shape the answer takes (a model that
    was not tuned, the base, is told it too)."""
    system = system_prompt.strip()
    if answer_format == "json":
        system += (' Answer in JSON: {"works": [{"title": ..., "year": ..., "doi": ...}, ...]}, one work per line; '
                   f"or, if none, {JSON_ABSTAIN}")
    return system


def make_records(claims: list[dict], library: list[dict], params, written: dict[str, list[dict]] | None = None
                 ) -> list[dict]:
    """The SFT records: one per claim and mode, in chat form, with the gold DOIs and the candidates shown.
    `written`: {claim id: the turns an LLM wrote (writer.py), ending with the user's question}; a claim
    without them is asked with a template."""
    retriever = None
    if "retrieval" in params.modes:
        from citetune.retrieval import WorkRetriever, training_claims

        retriever = WorkRetriever(library, training_claims(claims))
    system, fmt = system_message(params.system_prompt, params.answer_format), params.answer_format
    records = []
    for c in claims:
        rng = random.Random(f"{params.seed}:{c['id']}")
        template = QUESTION_TEMPLATES[rng.randrange(len(QUESTION_TEMPLATES))].format(context=c["claim"])
        *earlier, last = (written or {}).get(c["id"]) or [{"role": "user", "content": template}]
        question = last["content"]
        base = {k: c[k] for k in ("id", "paper_id", "sentence_id", "split", "claim", "dois")}
        for mode in params.modes:
            works, extra = c["works"], {}
            if mode == "retrieval":
                candidates = _candidates(retriever, c, params, rng)
                shown = {w["doi"].lower() for w in candidates}
                works = [w for w in c["works"] if w["doi"].lower() in shown]
                question_text, extra = retrieval_prompt(question, candidates, fmt), {"candidates": sorted(shown)}
            else:
                question_text = question
            answer = format_answer(works, fmt)
            records.append(base | {"mode": mode, "abstain": not works, **extra, "messages": [
                {"role": "system", "content": system},
                *earlier,
                {"role": "user", "content": question_text},
                {"role": "assistant", "content": answer},
            ]})
    return records


def _candidates(retriever, claim: dict, params, rng: random.Random) -> list[dict]:
    """The works shown with a claim: the retriever's top ones (the claim's own text left out of the
    documents, as for an unseen claim); in train, now and then without the gold works (RAFT)."""
    k = params.candidates
    exclude = claim["claim"] if claim["split"] == "train" else None
    hits = [w for w, _ in retriever.search(claim["claim"], k + len(claim["works"]), exclude_claim=exclude)]
    if claim["split"] == "train" and claim["works"] and rng.random() < params.drop_gold_fraction:
        gold = {w["doi"].lower() for w in claim["works"]}
        hits = [w for w in hits if w["doi"].lower() not in gold]
    return hits[:k]


def qa_metrics(records: list[dict], counts: dict) -> dict:
    first = [r for r in records if r["mode"] == records[0]["mode"]] if records else []
    by_split = {s: [r for r in first if r["split"] == s] for s in SPLITS}
    train_dois = {d for r in by_split["train"] for d in r["dois"]}
    test_dois = {d for r in by_split["test"] for d in r["dois"]}
    metrics = counts | {
        "claims": len(first),
        "records": len(records),
        "claims_by_split": {s: len(v) for s, v in by_split.items()},
        "abstain_by_split": {s: sum(r["abstain"] for r in v) for s, v in by_split.items()},
        "unique_dois": len({d for r in first for d in r["dois"]}),
        "test_dois_unseen_in_train": len(test_dois - train_dois),
        "dois_per_claim": round(sum(len(r["dois"]) for r in first) / max(len(first), 1), 3),
    }
    retrieval = [r for r in records if r["mode"] == "retrieval" and r["dois"]]
    for split in SPLITS:
        rows = [r for r in retrieval if r["split"] == split]
        if rows:  # how often the retriever shows every gold work: the ceiling of the retrieval mode
            metrics.setdefault("candidates_hold_all_gold", {})[split] = round(
                sum(set(r["dois"]) <= set(r["candidates"]) for r in rows) / len(rows), 3)
    return metrics


def dataset_card(metrics: dict, params) -> str:
    splits, abstain = metrics["claims_by_split"], metrics["abstain_by_split"]
    examples = "\n".join(f"- `{t}`" for t in QUESTION_TEMPLATES)
    templates = f"one of these templates, chosen per claim with seed {params.seed}:"
    if writer := metrics.get("writer"):
        talk = (f" as a conversation (user and assistant turns, {writer['turns']} of the user's) before the answer"
                if writer["turns"] > 1 else "")
        templates = (f"written by the LLM `{writer['model']}` from the claim{talk}, for {writer['written']} of "
                     f"{writer['claims']} claims; the others, whose reply could not be used, get {templates}")
    return f"""# citetune SFT set

Question–answer pairs that teach a language model to name the works behind a scientific
claim, each with its verified DOI, and to say so when no verified work supports it. Built by
citetune's `qa` stage from citing sentences extracted from papers, whose references were
matched to DOIs through Crossref metadata and validated (title, year, first author).

| split | claims | of which abstain |
|---|---|---|
| train | {splits['train']} | {abstain['train']} |
| validation | {splits['validation']} | {abstain['validation']} |
| test | {splits['test']} | {abstain['test']} |

Modes: {', '.join(params.modes)} (one record per claim and mode, {metrics['records']} records).
The library (`works.jsonl`): {metrics['library_works']} verified works; {metrics['held_out_works']} more
verified works are held out of it (seed {params.seed}, share {params.holdout_works}), so that claims
citing only them teach abstention. {metrics['unique_dois']} distinct DOIs are cited;
{metrics['test_dois_unseen_in_train']} DOIs of the test split never appear in train.

## Format
One JSON object per line: `id` (`<paper_id>:<sentence_id>`), `paper_id`, `sentence_id`, `split`,
`claim`, `mode`, `messages` (system, user, assistant), `dois` (the gold DOIs, lower-case; empty
when the answer abstains), `abstain`, and in retrieval mode `candidates` (the DOIs shown). The user
turn is {templates}

{examples}

In retrieval mode the question is followed by `{CANDIDATES_HEADER}` and {params.candidates} works
found by BM25 over the library's titles and the training claims that cite them; in train the gold
works are left out of the candidates in a share {params.drop_gold_fraction} of the claims, and the
answer then abstains.

{_answer_card(params.answer_format)}

## Splits
A claim's split is a hash of its normalised sentence (seed {params.seed}): the same sentence
never appears in two splits, and adding papers never moves an existing claim.

## Caveats
The claims are the citing authors' wording, not the cited papers'. A sentence whose other
references could not be matched cites the matched ones only, unless `qa.require_all_matched`
is set.
"""


def _answer_card(answer_format: str) -> str:
    if answer_format == "json":
        return (f"The assistant turn is JSON that follows `{ANSWER_SCHEMA.parent.name}/{ANSWER_SCHEMA.name}`, one "
                'work per line: `{"works": [`, each work as `{"title": ..., "year": ..., "doi": ...}` followed by '
                f"`,` but the last, `]}}`; or exactly `{JSON_ABSTAIN}`")
    return f"The assistant turn lists each cited work as `- <title> (<year>). DOI: <doi>`, or is exactly\n`{ABSTAIN}`"
