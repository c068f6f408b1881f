"""Retrieval of works for a claim and the no-model answers, on hand-made data and on the sample corpus."""

from __future__ import annotations

import pytest

from citetune.retrieval import OverlapLookup, WorkRetriever, bm25_answer
from citetune.testing.sft_sample import sample_library, sft_records

WORKS = [
    {"doi": "10.1/Attention", "title": "Attention Is All You Need", "year": 2017},
    {"doi": "10.1/bert", "title": "BERT: Pre-training of Deep Bidirectional Transformers", "year": 2018},
    {"doi": "10.1/resnet", "title": "Deep Residual Learning for Image Recognition", "year": 2016},
    {"doi": "10.1/adam", "title": "Adam: A Method for Stochastic Optimization", "year": 2015},
]
TRAIN = [
    ("Recurrence was replaced by self-attention in sequence transduction models.", ["10.1/attention"]),
    ("Masked token prediction trains an encoder that reads in both directions.", ["10.1/bert"]),
    ("Skip connections let very deep convolutional networks train.", ["10.1/resnet"]),
    ("Adaptive moment estimates set a per-parameter step size.", ["10.1/adam"]),
    ("Encoders pretrained on masked tokens and attention layers transfer widely.", ["10.1/bert", "10.1/attention"]),
]


def dois(hits):
    return [w["doi"].lower() for w, _ in hits]


@pytest.fixture(scope="module")
def retriever():
    return WorkRetriever(WORKS, TRAIN)


def test_a_new_claim_about_a_known_work_finds_it_first(retriever):
    # No word of these claims is in the work's title: only the training claims citing it can find it.
    assert dois(retriever.search("Skip connections make deep networks trainable", 3))[0] == "10.1/resnet"
    assert dois(retriever.search("per-parameter step sizes from moment estimates", 3))[0] == "10.1/adam"
    assert dois(retriever.search("residual learning for recognition", 1)) == ["10.1/resnet"]  # title words
    hit, score = retriever.search("self-attention without recurrence", 1)[0]
    assert hit is WORKS[0] and score > 0  # the work as given, DOI in its own case


def test_only_works_sharing_a_word_are_returned(retriever):
    assert retriever.search("quantum chromodynamics on a lattice", 10) == []
    assert len(retriever.search("deep", 10)) == 2  # ResNet's title and claim, BERT's title


def test_stop_words_and_case_and_punctuation_are_ignored(retriever):
    assert retriever.search("The of and in a to is for", 5) == []
    plain = retriever.scores("skip connections deep networks")
    assert retriever.scores("The SKIP-connections of the deep networks, in a way!") == plain


def test_leave_one_out_is_the_index_without_the_claim():
    own = "Adaptive moment estimates set a per-parameter step size."
    full = WorkRetriever(WORKS, TRAIN)
    assert dois(full.search(own, 1)) == ["10.1/adam"]  # it finds itself
    # Its own words are only in its own text: left out, nothing is found.
    assert full.search(own, 5, exclude_claim=own) == []
    without = WorkRetriever(WORKS, [c for c in TRAIN if c[0] != own])
    query = "Masked attention encoders and step size"
    assert full.scores(query, exclude_claim=own) == without.scores(query)
    # A twin of the claim (another paper's copy of the sentence, spelled differently) goes with it.
    twin = "adaptive Moment estimates set a per-parameter step size"
    assert full.scores(query, exclude_claim=twin) == without.scores(query)
    # Another claim's search is back on the whole index; a text that is no training claim changes nothing.
    assert full.scores(query) == full.scores(query, exclude_claim="a claim that no document holds")
    assert full.scores(query) != without.scores(query)


def test_ties_are_ordered_by_doi_whatever_the_input_order():
    works = [{"doi": f"10.1/{c}", "title": "Same title", "year": 2020} for c in "cab"]
    for order in (works, works[::-1]):
        hits = WorkRetriever(order, []).search("same title", 3)
        assert dois(hits) == ["10.1/a", "10.1/b", "10.1/c"]
        assert len({s for _, s in hits}) == 1
    retriever = WorkRetriever(WORKS, TRAIN)
    assert retriever.search("deep encoder attention", 4) == retriever.search("deep encoder attention", 4)


def test_duplicate_dois_are_one_work_and_unknown_gold_dois_are_ignored():
    works = WORKS + [{"doi": "10.1/ADAM", "title": "Adam again", "year": 2015}]
    retriever = WorkRetriever(works, TRAIN + [("an unverified work", ["10.9/unknown"])])
    assert len(retriever.works) == 4
    assert retriever.search("unverified", 5) == []


def test_nothing_to_index_finds_nothing():
    assert WorkRetriever([], []).search("graph") == []
    untitled = [{"doi": "10.1/x", "title": "", "year": 2020}]
    assert WorkRetriever(untitled, []).search("graph") == []
    only = WorkRetriever(untitled, [("graph networks", ["10.1/x"])])
    assert dois(only.search("graph")) == ["10.1/x"]
    assert only.search("graph", exclude_claim="graph networks") == []


def test_overlap_lookup_answers_with_the_most_overlapping_claim():
    lookup = OverlapLookup(TRAIN)
    assert lookup.answer("deep convolutional networks with skip connections") == ["10.1/resnet"]
    assert lookup.answer("masked tokens, attention layers, encoders") == ["10.1/bert", "10.1/attention"]
    assert lookup.answer("the of a") == []
    assert lookup.answer("masked encoder") == ["10.1/bert"]  # two words against one
    # Equal overlap ("masked" is in two claims): the later claim, in the order given, wins.
    assert OverlapLookup(TRAIN).answer("masked") == ["10.1/bert", "10.1/attention"]
    assert OverlapLookup(TRAIN[::-1]).answer("masked") == ["10.1/bert"]
    own = TRAIN[2][0]
    assert lookup.answer(own) == ["10.1/resnet"]
    assert lookup.answer(own, exclude_claim=own) == []  # no other claim shares a word with it
    assert lookup.answer(own + " masked", exclude_claim=own.upper()) == ["10.1/bert", "10.1/attention"]


def test_bm25_answer_takes_the_top_work_and_those_within_the_ratio():
    works = [{"doi": "10.1/A", "title": "Graph neural networks", "year": 2020},
             {"doi": "10.1/b", "title": "Graph neural networks", "year": 2021},
             {"doi": "10.1/c", "title": "Neural networks", "year": 2019}]
    retriever = WorkRetriever(works, [])
    assert bm25_answer(retriever, "graph neural networks") == ["10.1/a", "10.1/b"]  # tied at the top
    assert bm25_answer(retriever, "graph neural networks", ratio=0.0) == ["10.1/a", "10.1/b", "10.1/c"]
    assert bm25_answer(retriever, "graph neural networks", ratio=0.0, max_works=1) == ["10.1/a"]
    assert bm25_answer(retriever, "protein folding") == []


def sample_splits():
    """Every work of the sample corpus (none held out), and the (claim, DOIs) of train and test."""
    records = sft_records(holdout_works=0.0, modes=["closed_book"])
    splits = {s: [(r["claim"], r["dois"]) for r in records if r["split"] == s] for s in ("train", "test")}
    return sample_library(holdout_works=0.0), splits


def recall_at(retriever, rows, k, leave_one_out=False):
    found = (set(g) & set(dois(retriever.search(c, k, c if leave_one_out else None))) for c, g in rows)
    return sum(len(f) / len(set(g)) for f, (_, g) in zip(found, rows)) / len(rows)


def test_recall_on_the_sample_corpus():
    works, splits = sample_splits()
    retriever = WorkRetriever(works, splits["train"])
    # Titles alone find 0.73 of the test claims' works in the top 5: the training claims must add to that.
    assert recall_at(retriever, splits["test"], 5) >= 0.85
    assert recall_at(retriever, splits["test"], 1) >= 0.65
    assert recall_at(WorkRetriever(works, []), splits["test"], 5) < 0.80
    # Training claims searched leave-one-out look like test claims, not like claims that find themselves.
    assert recall_at(retriever, splits["train"], 1) > 0.88  # one of several gold works is all @1 can hold
    assert 0.6 <= recall_at(retriever, splits["train"], 1, leave_one_out=True) < 0.8
    exact = sum(set(bm25_answer(retriever, c)) == set(g) for c, g in splits["test"]) / len(splits["test"])
    assert exact >= 0.6
