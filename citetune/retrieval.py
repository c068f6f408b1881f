"""Retrieval of verified works for a claim, and the two answers that need no model.

A work's document is its title plus every training claim that cites it, so a new claim in the
words of an earlier citing sentence finds the work even when its title shares no word with it.
Scored with BM25 (bm25s), over the project's own normalised words.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import bm25s

from citetune.words import STOP_WORDS, comparable_text

# bm25s logs every index it builds at INFO; leave-one-out builds one per training claim.
logging.getLogger("bm25s").setLevel(logging.WARNING)

# (claim text, gold DOIs, lower-case) of the training split
TrainClaim = tuple[str, Sequence[str]]


def training_claims(rows: Iterable[dict]) -> list[TrainClaim]:
    """(claim, gold DOIs) of the train split's claims that cite library works, once per claim id (a claim
    comes once per mode): what qa retrieves with, and evaluate and ask retrieve and look up with."""
    claims: dict[str, TrainClaim] = {}
    for r in rows:
        if r["split"] == "train" and r["dois"]:
            claims.setdefault(r["id"], (r["claim"], list(r["dois"])))
    return list(claims.values())


def tokens(text: str) -> list[str]:
    """The words a text is matched on: normalised as titles are compared, stop words left out."""
    return [w for w in comparable_text(text).split() if w not in STOP_WORDS]


class WorkRetriever:
    """BM25 over the verified works; `search` ranks them for a claim."""

    def __init__(self, works: Iterable[dict], train_claims: Iterable[TrainClaim]):
        by_doi: dict[str, dict] = {}
        for work in works:  # a DOI matched by several references is one work
            by_doi.setdefault(str(work["doi"]).lower(), work)
        self.dois = sorted(by_doi)  # the order that breaks ties: independent of the input's
        self.works = [by_doi[d] for d in self.dois]
        position = {d: i for i, d in enumerate(self.dois)}
        self._title_tokens = [tokens(w.get("title") or "") for w in self.works]
        # Per work, the training claims citing it: (comparable text, tokens). Gold DOIs that are not
        # verified works cannot be answered and are left out.
        self._claims: list[list[tuple[str, list[str]]]] = [[] for _ in self.works]
        for text, dois in train_claims:
            entry = (comparable_text(text), tokens(text))
            for doi in dict.fromkeys(d.lower() for d in dois):
                if doi in position:
                    self._claims[position[doi]].append(entry)
        self._full = self._index(None)
        self._left_out: tuple[str, bm25s.BM25 | None] | None = None

    def _index(self, excluded: str | None) -> bm25s.BM25 | None:
        docs = [title + [w for text, words in claims if text != excluded for w in words]
                for title, claims in zip(self._title_tokens, self._claims)]
        if not any(docs):  # not a word to find (bm25s cannot index an empty vocabulary)
            return None
        index = bm25s.BM25()
        index.index(docs, show_progress=False)
        return index

    def _index_without(self, claim: str) -> bm25s.BM25 | None:
        # Leave-one-out: a training claim is searched in an index built without it (and without its
        # twins: the same sentence from another paper), as a test claim is searched in one that never
        # held it. Rebuilt exactly rather than by subtracting the claim from its works' documents:
        # BM25's document frequencies and mean length move too, and the library computes them. A
        # rebuild is one indexing of the corpus (15 ms for 300 works of 60 words, 0.3 s for 5,000 of
        # 100), done only when the claim is in a document and kept for the next search of the same
        # claim: a pass over every training claim of the sample corpus takes about a second, but it
        # grows as claims x corpus, so a corpus of many thousand claims would want subtraction.
        key = comparable_text(claim)
        if not any(text == key for claims in self._claims for text, _ in claims):
            return self._full
        if self._left_out is None or self._left_out[0] != key:
            self._left_out = (key, self._index(key))
        return self._left_out[1]

    def scores(self, claim: str, exclude_claim: str | None = None) -> list[float]:
        """The BM25 score of every work (in `self.works` order) for a claim."""
        index = self._full if exclude_claim is None else self._index_without(exclude_claim)
        ids = index.get_tokens_ids(tokens(claim)) if index is not None else []
        if not ids:  # no word of the claim is in any document
            return [0.0] * len(self.works)
        return [float(s) for s in index.get_scores_from_ids(ids)]

    def search(self, claim: str, k: int = 10, exclude_claim: str | None = None) -> list[tuple[dict, float]]:
        """The k best works for a claim, best first, as (work, score); only works that share a word
        with it (score > 0). Equal scores keep DOI order. exclude_claim: a training claim whose own
        text is to be left out of the documents (pass the claim itself when searching for it)."""
        scores = self.scores(claim, exclude_claim)
        ranked = sorted((i for i, s in enumerate(scores) if s > 0), key=lambda i: -scores[i])
        return [(self.works[i], scores[i]) for i in ranked[:k]]


class OverlapLookup:
    """The lookup baseline: the gold DOIs of the training claim sharing the most words with the claim."""

    def __init__(self, train_claims: Iterable[TrainClaim]):
        self._claims = [(comparable_text(text), set(tokens(text)), list(dict.fromkeys(d.lower() for d in dois)))
                        for text, dois in train_claims]

    def answer(self, claim: str, exclude_claim: str | None = None) -> list[str]:
        """Gold DOIs of the most overlapping training claim (the last of equals, in the order given);
        [] when none shares a word. exclude_claim: leave that training claim (and its twins) out."""
        words = set(tokens(claim))
        skip = comparable_text(exclude_claim) if exclude_claim is not None else None
        best, best_overlap = [], 0
        for text, claim_words, dois in self._claims:
            overlap = len(words & claim_words)
            if overlap and overlap >= best_overlap and text != skip:
                best, best_overlap = dois, overlap
        return best


# Chosen on the validation split of the default pipeline (bench/retrieval_quality.py): only the
# works tied with the top one; any lower ratio adds wrong works more often than right ones.
ANSWER_RATIO = 1.0
ANSWER_MAX_WORKS = 3


def bm25_answer(retriever: WorkRetriever, claim: str, ratio: float = ANSWER_RATIO,
                max_works: int = ANSWER_MAX_WORKS, exclude_claim: str | None = None) -> list[str]:
    """The BM25 baseline: the DOIs (lower-case) of the top work and of every work scoring at least
    `ratio` times the top's, at most max_works; [] when no work shares a word with the claim."""
    hits = retriever.search(claim, max_works, exclude_claim)
    return [w["doi"].lower() for w, s in hits if s >= ratio * hits[0][1]]
