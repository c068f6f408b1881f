"""The answer format, read back from what models really write: cut short, glued, abstaining, free text."""

import pytest

from citetune.answers import ABSTAIN, format_answer, parse_answer, work_line
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
