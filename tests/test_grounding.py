"""Grounded decoding: with the constraint, a model writes only whole allowed lines, whatever its
weights; without it, the same model writes anything."""

import json
import random
import re
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from citetune.answers import (
    JSON_ABSTAIN,
    JSON_FRAME,
    format_answer,
    parse_answer,
    work_line,
)
from citetune.grounding import Frame, GroundedDecoding, token_bytes
from citetune.models import load_base, load_tokenizer

ROOT = Path(__file__).resolve().parents[1]
ABSTAIN = "No verified work supports this claim."
LINES = [
    "- Attention Is All You Need (2017). DOI: 10.48550/arXiv.1706.03762",
    "- Attention Is Not Explanation (2019). DOI: 10.18653/v1/N19-1357",
    "- Über die Elektrodynamik bewegter Körper (1905). DOI: 10.1002/andp.19053221004",
    "- Théorie analytique de la chaleur (1822). DOI: 10.1017/CBO9780511693205",
    "- Biocompatibility of implants (1996). DOI: 10.1002/(SICI)1097-4636(199603)31:3<297::AID-JBM1>3.0.CO;2-G",
    # One line a prefix of another: ending after the first must stay possible, and so must going on.
    "- Deep Residual Learning (2016). DOI: 10.1109/CVPR.2016.9",
    "- Deep Residual Learning (2016). DOI: 10.1109/CVPR.2016.90",
]
PROSE = ["Which works support the claim that attention suffices?", "Zwölf Boxkämpfer jagen Viktor quer über den Sylter Deich.",
         "La théorie de la chaleur est analytique.", "Answer with verified works only, one per line."]
PROMPTS = ["Claim: attention suffices.\nWorks:\n", "Claim: heat.\n", "Q:\n"]


def answer_lines(text: str, lines, exclusive=(ABSTAIN,)) -> list[str]:
    """The lines of a complete answer; AssertionError if it is not one."""
    parts = text.removesuffix("\n").split("\n")
    assert all(p in set(lines) | set(exclusive) for p in parts), f"not allowed lines: {text!r}"
    assert len(set(parts)) == len(parts), f"a repeated line: {text!r}"
    assert len(parts) == 1 or not set(parts) & set(exclusive), f"an exclusive line not alone: {text!r}"
    return parts


def train_texts() -> list[str]:
    return LINES + [ABSTAIN, "\n".join(LINES), "\n".join(LINES[::-1]) + "\n"] + PROSE + PROMPTS


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>", padding_side="left")


def byte_bpe() -> PreTrainedTokenizerFast:
    """GPT-2/Qwen style: byte-level BPE, a space carried as 'Ġ' at a token's start."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(train_texts(), trainers.BpeTrainer(
        vocab_size=500, special_tokens=["<pad>", "<eos>", "<unk>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return wrap(tok)


def metaspace_unigram() -> PreTrainedTokenizerFast:
    """SentencePiece style: '▁' for a space, dropped by decode at the start of a text."""
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    tok.decoder = decoders.Metaspace(prepend_scheme="first")
    tok.train_from_iterator(train_texts(), trainers.UnigramTrainer(
        vocab_size=300, special_tokens=["<pad>", "<eos>", "<unk>"], unk_token="<unk>"))
    return wrap(tok)


TOKENIZERS = {"byte_bpe": byte_bpe, "metaspace_unigram": metaspace_unigram}


@pytest.fixture(scope="module", params=sorted(TOKENIZERS))
def tokenizer(request):
    return TOKENIZERS[request.param]()


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    return LlamaForCausalLM(config).eval()


def generate(model, tokenizer, prompts, fn_of=None, **kwargs) -> tuple[list[str], list[bool]]:
    """Generated texts of the left-padded batch, and whether each ended; `fn_of(prompt_length)` gives
    the constraint."""
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    width = batch["input_ids"].shape[1]
    fn = fn_of(width) if fn_of else None
    out = model.generate(**batch, prefix_allowed_tokens_fn=fn, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, **kwargs)
    ended = [tokenizer.eos_token_id in row.tolist() for row in out[:, width:]]
    return [tokenizer.decode(row, skip_special_tokens=True) for row in out[:, width:]], ended


def enough_tokens(lines) -> int:
    """Every token writes at least one character, so every answer ends within this many tokens."""
    return sum(len(line) + 1 for line in lines) + len(ABSTAIN) + 2


# --- token bytes -------------------------------------------------------------------------------

def test_token_bytes_rebuild_the_text(tokenizer):
    pieces = token_bytes(tokenizer)
    for line in LINES + PROSE:
        ids = tokenizer.encode(line, add_special_tokens=False)
        # SentencePiece marks the text's start with a space that decode drops; mid-text it is real.
        assert b"".join(pieces[i] for i in ids).removeprefix(b" ") == line.encode()
    for special in (tokenizer.eos_token_id, tokenizer.pad_token_id):
        assert pieces[special] is None


def test_token_bytes_keep_the_space_decode_drops():
    tokenizer = metaspace_unigram()
    first = tokenizer.encode("Attention Is", add_special_tokens=False)[0]
    assert tokenizer.convert_ids_to_tokens(first) == "▁A" and tokenizer.decode([first]) == "A"
    assert token_bytes(tokenizer)[first] == b" A"


def test_token_bytes_join_word_pieces():
    tok = Tokenizer(models.WordPiece(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(train_texts(), trainers.WordPieceTrainer(vocab_size=200, special_tokens=["<pad>", "<eos>", "<unk>"]))
    tokenizer, text = wrap(tok), "Attention Is Not Explanation"
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert any(t.startswith("##") for t in tokenizer.convert_ids_to_tokens(ids))  # words split into pieces
    pieces = token_bytes(tokenizer)
    assert b"".join(pieces[i] for i in ids) == (" " + text).encode()


def test_partial_characters_are_their_bytes():
    tokenizer = byte_bpe()
    pieces = token_bytes(tokenizer)
    lead_byte = tokenizer.convert_tokens_to_ids("Ã")  # 0xC3, the first byte of 'é', 'ü', 'Ö'
    assert pieces[lead_byte] == b"\xc3" and pieces[tokenizer.convert_tokens_to_ids("Ġ")] == b" "


# --- the grammar, stepped by hand --------------------------------------------------------------

def test_random_walks_stay_valid_and_end(tokenizer):
    grounded = GroundedDecoding(tokenizer, LINES, exclusive=[ABSTAIN])
    fn = grounded.allowed_tokens_fn(prompt_length=1)
    rng = random.Random(0)
    seen = set()
    for _ in range(300):
        ids = [0]
        while True:
            allowed = fn(0, torch.tensor(ids))
            assert allowed, "a state allows nothing"
            ids.append(rng.choice(allowed))
            if ids[-1] == tokenizer.eos_token_id:
                break
            assert len(ids) < enough_tokens(LINES), "the walk never ends"
        seen.add(tuple(answer_lines(tokenizer.decode(ids[1:], skip_special_tokens=True), LINES)))
    assert len(seen) > 20  # the walks reach many answers, not one forced path
    assert (ABSTAIN,) in seen and any(len(s) >= 3 for s in seen)


def test_every_valid_answer_can_be_written():
    tokenizer = byte_bpe()  # byte-level: the tokenization of an answer is exactly its text
    grounded = GroundedDecoding(tokenizer, LINES, exclusive=[ABSTAIN])
    fn = grounded.allowed_tokens_fn(prompt_length=0)
    answers = [ABSTAIN, LINES[5], LINES[5] + "\n", LINES[6] + "\n" + LINES[5], "\n".join(LINES) + "\n",
               LINES[4] + "\n" + LINES[2]]
    for answer in answers:
        ids = tokenizer.encode(answer, add_special_tokens=False) + [tokenizer.eos_token_id]
        for k in range(len(ids)):
            assert ids[k] in fn(0, torch.tensor(ids[:k])), f"{answer!r} blocked at token {k}"


def test_invalid_answers_are_blocked():
    tokenizer = byte_bpe()
    grounded = GroundedDecoding(tokenizer, LINES, exclusive=[ABSTAIN])
    fn = grounded.allowed_tokens_fn(prompt_length=0)
    eos = tokenizer.eos_token_id
    invalid = ["\n", "- Attention", LINES[0] + "\n" + LINES[0], LINES[0] + "\n" + ABSTAIN, ABSTAIN + "\n" + LINES[0],
               LINES[0] + "\n\n", "- Attention Is All You Need (2018)", LINES[6] + "1", LINES[2].replace("Ü", "U")]
    for answer in invalid:
        ids = tokenizer.encode(answer, add_special_tokens=False) + [eos]
        assert any(ids[k] not in fn(0, torch.tensor(ids[:k])) for k in range(len(ids))), answer
    assert fn(0, torch.tensor(tokenizer.encode(ABSTAIN + "\n", add_special_tokens=False))) == [eos]


def test_a_line_the_vocabulary_cannot_write_ends_generation():
    tokenizer = metaspace_unigram()  # no byte fallback: '→' is unknown
    grounded = GroundedDecoding(tokenizer, ["- Arrows → (2000). DOI: 10.1/x"])
    fn = grounded.allowed_tokens_fn(prompt_length=0)
    ids: list[int] = []
    while (allowed := fn(0, torch.tensor(ids))) != [tokenizer.eos_token_id]:
        ids.append(max(allowed, key=lambda i: len(grounded.pieces[i])))  # the longest piece
    assert tokenizer.decode(ids) == "- Arrows "


def test_row_lines_must_be_allowed():
    tokenizer = byte_bpe()
    grounded = GroundedDecoding(tokenizer, LINES[:2], exclusive=[ABSTAIN])
    with pytest.raises(ValueError, match="not allowed"):
        grounded.allowed_tokens_fn(0, [[LINES[3]]])


# --- JSON answers: the lines inside a frame ----------------------------------------------------

WORKS = [{"title": t, "year": int(y), "doi": d}
         for t, y, d in (re.match(r"- (.*) \((\d+)\)\. DOI: (.*)", line).groups() for line in LINES)]
JSON_LINES = [work_line(w, "json") for w in WORKS]


def json_decoding(tokenizer) -> GroundedDecoding:
    return GroundedDecoding(tokenizer, JSON_LINES, exclusive=[JSON_ABSTAIN], frame=Frame(*JSON_FRAME))


def test_every_valid_json_answer_and_no_other_can_be_written():
    tokenizer = byte_bpe()
    fn = json_decoding(tokenizer).allowed_tokens_fn(prompt_length=0)
    eos = tokenizer.eos_token_id

    def blocked(answer: str, end: bool = True) -> bool:
        ids = tokenizer.encode(answer, add_special_tokens=False) + ([eos] if end else [])
        return any(ids[k] not in fn(0, torch.tensor(ids[:k])) for k in range(len(ids)))

    valid = [JSON_ABSTAIN, format_answer(WORKS[:1], "json"), format_answer(WORKS[5:7], "json"),
             format_answer(WORKS[::-1], "json") + "\n", format_answer([WORKS[4], WORKS[2]], "json")]
    assert not any(map(blocked, valid))
    opening, separator, closing = JSON_FRAME
    invalid = [opening, f"{opening}\n{closing}", f"{opening}\n{JSON_LINES[0]}{separator}\n{closing}",
               f"{opening}\n{JSON_LINES[0]}\n{JSON_LINES[1]}\n{closing}",  # no separator
               f"{opening}\n{JSON_LINES[0]}{separator}\n{JSON_LINES[0]}\n{closing}",  # a work twice
               f"{opening}\n{JSON_ABSTAIN}\n{closing}", f"{JSON_ABSTAIN}\n{opening}",
               f"{opening}\n{LINES[0]}\n{closing}",  # a text line
               format_answer(WORKS[:2], "json") + "\n" + closing, format_answer(WORKS[:1], "json")[:-1]]
    for answer in invalid:
        assert blocked(answer), answer
    assert fn(0, torch.tensor(tokenizer.encode(JSON_ABSTAIN + "\n", add_special_tokens=False))) == [eos]


def test_random_json_walks_are_schema_valid_answers_within_their_row():
    tokenizer = byte_bpe()
    decoding = json_decoding(tokenizer)
    rows = [JSON_LINES, JSON_LINES[:1], JSON_LINES[2:5]]  # one work alone: it can take no separator
    fn = decoding.allowed_tokens_fn(prompt_length=0, lines_per_row=rows)
    rng, seen = random.Random(0), set()
    for n in range(150):
        row, ids = n % len(rows), []
        while (ids or [None])[-1] != tokenizer.eos_token_id:
            ids.append(rng.choice(fn(row, torch.tensor(ids))))
            assert len(ids) < 3 * enough_tokens(JSON_LINES)
        parsed = parse_answer(tokenizer.decode(ids, skip_special_tokens=True), answer_format="json")
        assert not parsed.malformed and (parsed.abstained or parsed.dois)
        assert set(parsed.dois) <= {json.loads(line)["doi"].lower() for line in rows[row]}
        seen.add(tuple(parsed.dois))
    assert () in seen and any(len(s) >= 3 for s in seen)


# --- generation ---------------------------------------------------------------------------------

def test_generation_writes_only_allowed_lines(model, tokenizer):
    grounded = GroundedDecoding(tokenizer, LINES, exclusive=[ABSTAIN])
    answers = set()
    for seed in [None, 0, 1, 2, 3]:  # greedy, then sampling from the whole distribution
        if seed is not None:
            torch.manual_seed(seed)
        texts, ended = generate(model, tokenizer, PROMPTS, grounded.allowed_tokens_fn,
                                max_new_tokens=enough_tokens(LINES), do_sample=seed is not None, top_k=0)
        assert all(ended), texts
        answers.update(tuple(answer_lines(t, LINES)) for t in texts)
    assert len(answers) > 3  # sampling explores: the constraint does not force one answer

    free, _ = generate(model, tokenizer, PROMPTS, max_new_tokens=40, do_sample=False)
    for text in free:
        with pytest.raises(AssertionError):
            answer_lines(text, LINES)


def test_each_row_keeps_to_its_own_lines(model, tokenizer):
    grounded = GroundedDecoding(tokenizer, LINES, exclusive=[ABSTAIN])
    rows = [LINES[:2], LINES[2:5], LINES[5:]]
    for seed in range(3):
        torch.manual_seed(seed)
        texts, ended = generate(model, tokenizer, PROMPTS, lambda width: grounded.allowed_tokens_fn(width, rows),
                                max_new_tokens=enough_tokens(LINES), do_sample=True, top_k=0)
        assert all(ended)
        for text, row in zip(texts, rows):
            answer_lines(text, row)


# --- the project's tiny base --------------------------------------------------------------------

def crossref_lines() -> list[str]:
    lines = []
    for raw in (ROOT / "data" / "sample" / "crossref.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(raw)
        year = rec["issued"]["date-parts"][0][0]
        lines.append(f"- {' '.join(rec['title'][0].split())} ({year}). DOI: {rec['DOI']}")
    return lines


@pytest.mark.slow
def test_tiny_base_answers_from_its_candidates(tiny_base):
    tokenizer = load_tokenizer(tiny_base)
    model = load_base(tiny_base, device="cpu").eval()
    lines = crossref_lines()
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    rows = [lines[:3], lines[40:42], lines[100:103]]
    prompts = [tokenizer.apply_chat_template(
        [{"role": "user", "content": "Which of these works support the claim?\n" + "\n".join(row)}],
        tokenize=False, add_generation_prompt=True) for row in rows]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left")
    width = batch["input_ids"].shape[1]

    def answers(fn, **kwargs) -> list[str]:
        out = model.generate(**batch, prefix_allowed_tokens_fn=fn, max_new_tokens=100, eos_token_id=end,
                             pad_token_id=tokenizer.pad_token_id, **kwargs)
        rows_out = out[:, width:].tolist()
        assert fn is None or all(end in row for row in rows_out), "an answer did not end"
        return [tokenizer.decode(row[:row.index(end)] if end in row else row) for row in rows_out]

    # Without the abstention the untuned model must cite; it keeps to each row's candidates.
    citing = GroundedDecoding(tokenizer, lines, end_token_ids=[end])
    for seed in range(3):
        torch.manual_seed(seed)
        for text, row in zip(answers(citing.allowed_tokens_fn(width, rows), do_sample=True), rows):
            answer_lines(text, row, exclusive=())
    grounded = GroundedDecoding(tokenizer, lines, exclusive=[ABSTAIN], end_token_ids=[end])
    for text in answers(grounded.allowed_tokens_fn(width), do_sample=False):
        answer_lines(text, lines)
    for text in answers(None, do_sample=False):
        with pytest.raises(AssertionError):
            answer_lines(text, lines)
