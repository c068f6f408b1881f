"""The answer format, read back from what models really write: cut short, glued, abstaining, free text."""

import json
import re

import pytest
from jsonschema import Draft202012Validator

from citetune.answers import (
    ABSTAIN,
    ADAPTER_FORMAT,
    ANSWER_SCHEMA,
    JSON_ABSTAIN,
    adapter_format,
    answer_format_of,
    format_answer,
    parse_answer,
    work_line,
)
from citetune.ids import extract_dois

LORA = {"title": "LoRA: Low-Rank Adaptation of Large Language Models", "year": 2021, "doi": "10.48550/arXiv.2106.09685"}
BERT = {"title": "BERT: Pre-training of Deep Bidirectional Transformers", "year": 2019, "doi": "10.18653/v1/N19-1423"}


@pytest.mark.parametrize("text, dois", [
    ("- LoRA: Low-Rank Adaptation of Large Language Models (2021). DOI: 10.48550/arXiv.2106.09685",
     ["10.48550/arxiv.2106.09685"]),
    ("- A (2017). DOI: 10.48550/arxiv.1706.03762\n- B (2018). DOI: 10.48550/arxiv.1810.04805.",
     ["10.48550/arxiv.1706.03762", "10.48550/arxiv.1810.04805"]),
    ("See https://doi.org/10.1145/3292500.3330701, and again (doi:10.1145/3292500.3330701).",
     ["10.1145/3292500.3330701"]),
    ("Legacy: 10.1002/(sici)1097-4571(199806)49:8 is one DOI;", ["10.1002/(sici)1097-4571(199806)49:8"]),
    ('Quoted "10.5555/ct.2021.2628"; bracketed [10.1000/XYZ-1] and a bare 10.1000/abc:',
     ["10.5555/ct.2021.2628", "10.1000/xyz-1", "10.1000/abc"]),
    # The next turn glued to the DOI by a template's markers is not part of it.
    ("DOI: 10.48550/arXiv.1706.03762<|im_end|>\n<|im_start|>user", ["10.48550/arxiv.1706.03762"]),
    ("No identifier here, only 10.48 and arXiv:2106.09685 and 10.123/short-prefix.", []),
    ("", []),
])
def test_extract_dois_from_hand_written_answers(text, dois):
    assert extract_dois(text) == dois


def test_answers_round_trip_with_titles():
    parsed = parse_answer(format_answer([LORA, BERT]))
    assert parsed.dois == [LORA["doi"].lower(), BERT["doi"].lower()]
    assert [c.title for c in parsed.cited] == [LORA["title"], BERT["title"]]
    assert not parsed.abstained and not parsed.truncated


def test_abstention_is_one_fixed_line_and_parses_back():
    assert format_answer([]) == ABSTAIN
    assert parse_answer(ABSTAIN).abstained and parse_answer(ABSTAIN).dois == []
    assert parse_answer("  no verified work   supports this claim. ").abstained
    # An abstention that still cites a DOI is an answer, not an abstention.
    assert not parse_answer(f"{ABSTAIN}\n{work_line(LORA)}").abstained
    assert not parse_answer("I do not know.").abstained


def test_an_answer_cut_by_the_token_budget_loses_its_last_line_whatever_the_cut():
    full = format_answer([LORA, BERT])
    for cut in range(len(work_line(LORA)) + 1, len(full)):
        parsed = parse_answer(full[:cut], finished=False)
        assert parsed.dois == [LORA["doi"].lower()], full[:cut]
        assert parsed.truncated == (full[cut - 1] != "\n")
    assert parse_answer(full, finished=True).dois == [LORA["doi"].lower(), BERT["doi"].lower()]


def test_free_text_answers_give_their_dois_and_the_title_before_them():
    parsed = parse_answer("The paper is LoRA (2021), DOI: 10.48550/arXiv.2106.09685 and also see 10.1000/xyz")
    assert parsed.dois == ["10.48550/arxiv.2106.09685", "10.1000/xyz"]
    assert parsed.cited[0].title == "The paper is LoRA"


# --- JSON answers -------------------------------------------------------------------------------

SCHEMA = json.loads(ANSWER_SCHEMA.read_text())
# A legacy DOI with angle brackets: whole in a JSON string, though free text cannot delimit it.
SICI = {"title": "Biocompatibility of implants", "year": "1996",
        "doi": "10.1002/(SICI)1097-4636(199603)31:3<297::AID-JBM1>3.0.CO;2-G"}


def test_json_answers_follow_the_published_schema_one_work_per_line():
    Draft202012Validator.check_schema(SCHEMA)
    answer = format_answer([LORA, BERT, SICI], "json")
    assert Draft202012Validator(SCHEMA).is_valid(json.loads(answer))
    lines = answer.splitlines()
    assert lines[0] == '{"works": [' and lines[-1] == "]}"
    assert lines[1:-1] == [work_line(LORA, "json") + ",", work_line(BERT, "json") + ",", work_line(SICI, "json")]
    assert json.loads(lines[3]) == {"title": SICI["title"], "year": 1996, "doi": SICI["doi"]}
    assert json.loads(work_line(LORA | {"year": ""}, "json"))["year"] is None  # unknown year: null
    assert Draft202012Validator(SCHEMA).is_valid(json.loads(format_answer([], "json")))


def test_json_answers_round_trip_and_abstain_as_the_text_line_says():
    parsed = parse_answer(format_answer([LORA, SICI], "json"), answer_format="json")
    assert parsed.dois == [LORA["doi"].lower(), SICI["doi"].lower()]
    assert [c.title for c in parsed.cited] == [LORA["title"], SICI["title"]]
    assert not (parsed.abstained or parsed.truncated or parsed.malformed)
    # Any layout parses when finished: the line layout is what grounded decoding needs, not the reader.
    flat = json.dumps({"works": [{"title": "T", "year": None, "doi": "10.1000/xyz"}]})
    assert parse_answer(flat, answer_format="json").dois == ["10.1000/xyz"]
    assert SCHEMA["properties"]["abstention"]["const"] == ABSTAIN
    abstained = parse_answer(JSON_ABSTAIN, answer_format="json")
    assert abstained.abstained and abstained.dois == [] and not abstained.malformed
    # The text format's abstention line is no JSON answer.
    assert parse_answer(ABSTAIN, answer_format="json").malformed


@pytest.mark.parametrize("answer, dois", [
    ("The paper is LoRA, DOI: 10.48550/arXiv.2106.09685", ["10.48550/arxiv.2106.09685"]),  # not JSON
    ('{"works": [{"title": "LoRA", "year": 2021, "doi": "10.48550/arXiv.2106.09685"}',
     ["10.48550/arxiv.2106.09685"]),  # unclosed, yet finished
    ('{"works": []}', []),  # no work and no abstention
    (json.dumps({"works": [LORA | {"doi": "10.48550/arXiv.2106.09685"}], "abstention": ABSTAIN}),
     ["10.48550/arxiv.2106.09685"]),  # a work and the abstention
    (json.dumps({"works": [{"title": "LoRA", "year": "2021", "doi": "10.48550/arXiv.2106.09685"}]}),
     ["10.48550/arxiv.2106.09685"]),  # a year as text
    (json.dumps({"works": [{"title": "LoRA", "year": 2021, "doi": "arXiv:2106.09685"}]}), []),  # not a DOI
    (json.dumps({"works": [{"title": "LoRA", "year": 2021, "doi": "10.1000/a b"}]}), ["10.1000/a"]),
    (json.dumps([{"title": "LoRA", "year": 2021, "doi": "10.1000/x"}]), ["10.1000/x"]),  # no object
    (json.dumps({"works": [LORA], "note": "sure"}), [LORA["doi"].lower()]),  # a key the schema has not
])
def test_a_json_answer_off_the_schema_is_malformed_and_its_dois_still_read(answer, dois):
    parsed = parse_answer(answer, answer_format="json")
    assert parsed.malformed and not parsed.abstained and not parsed.truncated
    assert parsed.dois == dois  # verified all the same: a fabricated DOI is one in any format


def test_text_answers_are_never_malformed():
    for text in ("", "I do not know.", '{"works": []}', format_answer([LORA])):
        assert not parse_answer(text).malformed


def test_a_json_answer_cut_by_the_budget_keeps_its_whole_work_lines():
    works = [LORA, BERT, SICI]
    full = format_answer(works, "json")
    lines = full.splitlines(keepends=True)
    ends = [len("".join(lines[:k + 1])) for k in range(1, 4)]  # where each work's line ends, its newline included
    for cut in range(1, len(full)):
        parsed = parse_answer(full[:cut], finished=False, answer_format="json")
        assert parsed.truncated and not parsed.malformed, full[:cut]
        assert parsed.dois == [w["doi"].lower() for w, end in zip(works, ends) if end <= cut], full[:cut]
    assert parse_answer(full, finished=False, answer_format="json").dois == parse_answer(full, answer_format="json").dois


def test_the_schemas_doi_pattern_takes_every_doi_text_answers_find():
    pattern = re.compile(SCHEMA["$defs"]["work"]["properties"]["doi"]["pattern"])
    for doi in extract_dois("10.48550/arXiv.2106.09685 10.1002/(sici)1097-4571(199806)49:8 10.1000/XYZ-1;"):
        assert pattern.search(doi), doi
    assert not pattern.search("10.123/short-prefix") and not pattern.search("doi:10.1000/x")


def test_the_format_of_gold_answers_and_of_an_adapter(tmp_path):
    assert answer_format_of([format_answer([LORA]), ABSTAIN]) == "text"
    assert answer_format_of([format_answer([LORA], "json"), JSON_ABSTAIN]) == "json"
    assert answer_format_of([]) == "text"
    with pytest.raises(ValueError, match="mix"):
        answer_format_of([format_answer([LORA]), JSON_ABSTAIN])
    assert adapter_format(tmp_path) == "text"  # an adapter saved before formats were recorded
    (tmp_path / ADAPTER_FORMAT).write_text('{"answer_format": "json"}')
    assert adapter_format(tmp_path) == "json"


def test_qa_writes_json_answers_that_read_back_as_their_gold():
    from citetune.testing.sft_sample import sft_records

    records = sft_records(modes=["closed_book", "retrieval"], answer_format="json")
    assert any(r["abstain"] for r in records) and any(len(r["dois"]) > 1 for r in records)
    for r in records:
        parsed = parse_answer(r["messages"][-1]["content"], answer_format="json")
        assert not parsed.malformed and parsed.abstained == r["abstain"], r["id"]
        # Retrieval cites the gold works among the candidates shown; closed-book all of them.
        assert parsed.dois == [d for d in r["dois"] if r["mode"] == "closed_book" or d in r["candidates"]], r["id"]
        assert "JSON" in r["messages"][0]["content"]
    assert answer_format_of(r["messages"][-1]["content"] for r in records) == "json"
