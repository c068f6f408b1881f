"""qa.writer: llm against the loopback OpenAI-compatible server: claims rewritten as questions or short
conversations that end with citetune's own answer, every reply cached (a rerun asks nothing), unusable
replies left to the templates and counted by reason, requests paced and bounded, and each failure of the
endpoint a StageError that says what to do and loses no reply already received."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from importlib.util import find_spec

import pytest
import yaml

from citetune.answer_cache import AnswerCache
from citetune.answers import format_answer
from citetune.errors import StageError
from citetune.io import read_jsonl
from citetune.params import default_params
from citetune.qa import CANDIDATES_HEADER, QUESTION_TEMPLATES
from citetune.testing.openai_server import OpenAIServer
from citetune.writer import read_reply, write_questions

pytestmark = pytest.mark.skipif(find_spec("openai") is None, reason="the judge extra (openai) is not installed")

KEY_ENV = "CITETUNE_TEST_WRITER_KEY"
CLAIM = "Low-rank adapters cut the memory of fine-tuning large language models."


def question_for(messages: list[dict]) -> str:
    """A well-behaved writer: the claim, asked."""
    return f"Which work shows that {messages[-1]['content'].rstrip('.').lower()}?"


def llm(base_url: str, **overrides):
    return default_params("qa", llm={"base_url": base_url, "model": "writer-model", "api_key_env": KEY_ENV,
                                     "requests_per_second": 50, **overrides}).llm


def claims(n: int) -> list[dict]:
    return [{"id": f"p:s{i}", "claim": f"Adapter variant {i} halves the memory of fine-tuning."} for i in range(n)]


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "local-key")


# --- reading a reply --------------------------------------------------------------------------------

@pytest.mark.parametrize(("reply", "reason"), [
    ("", "empty"),
    ("<think>hmm</think>  ", "empty"),
    ("Which work shows that low-rank adapters cut the memory " + "of models " * 60 + "?", "too_long"),
    ("Which work (doi:10.1234/lora) shows that low-rank adapters cut memory?", "doi_or_url"),
    ("Is https://arxiv.org/abs/2106.09685 where low-rank adapters cut memory?", "doi_or_url"),
    ("Does arXiv:2106.09685 show that low-rank adapters cut memory?", "doi_or_url"),
    ("Low-rank adapters cut the memory of fine-tuning.", "not_a_question"),
    ("Here is the question:\nWhich work shows that low-rank adapters cut memory?", "not_a_question"),
    ("What is the capital of France?", "off_topic"),
])
def test_an_unusable_reply_is_named_by_its_reason(reply, reason):
    assert read_reply(reply, CLAIM, 1, 400) == (None, reason)


def test_a_question_is_read_without_quotes_or_thinking():
    turns, reason = read_reply('<think>The claim is about LoRA.</think>\n"Which work shows that low-rank '
                               'adapters cut the memory of fine-tuning?"', CLAIM, 1, 400)
    assert reason == "" and turns == [{"role": "user", "content":
                                       "Which work shows that low-rank adapters cut the memory of fine-tuning?"}]


def test_a_conversation_is_read_from_the_json_list_in_the_reply():
    texts = ["I am reading about adapters for fine-tuning.", "They train few weights. What would you like to know?",
             "Which work found that low-rank adapters cut memory?"]
    reply = "```json\n" + json.dumps(texts) + "\n```"
    turns, _ = read_reply(reply, CLAIM, 2, 400)
    assert [t["role"] for t in turns] == ["user", "assistant", "user"] and [t["content"] for t in turns] == texts
    as_objects = json.dumps([{"role": "user", "content": t} for t in texts])
    assert read_reply(as_objects, CLAIM, 2, 400)[0] == turns
    assert read_reply(json.dumps(texts[:1]), CLAIM, 2, 400) == (None, "not_a_conversation")
    assert read_reply("Sure! Which work found that adapters cut memory?", CLAIM, 2, 400) == (None, "not_a_conversation")
    leaked = [texts[0], "That is https://doi.org/10.1234/lora, isn't it?", texts[2]]
    assert read_reply(json.dumps(leaked), CLAIM, 2, 400) == (None, "doi_or_url")  # the assistant's turns too


# --- asking ------------------------------------------------------------------------------------------

def test_questions_are_written_cached_and_a_rerun_asks_nothing(tmp_path, key, monkeypatch):
    cache = tmp_path / "writer.sqlite"
    some = claims(5) + [{"id": "q:s0", "claim": claims(1)[0]["claim"]}]  # one sentence in two papers
    with OpenAIServer(question_for) as srv:
        srv.script("Which work shows it? doi:10.1/x")  # one reply leaks a DOI: its claim keeps the template
        written, counts = write_questions(some, llm(srv.base_url, workers=1), cache)
        assert srv.requests == 5 and set(srv.keys) == {"local-key"}
        assert {(b["model"], b["temperature"], b["max_tokens"]) for b in srv.bodies} == {("writer-model", 0.7, 300)}
        assert all(b["messages"][-1] == {"role": "user", "content": c["claim"]} for b, c in zip(srv.bodies, some))
        assert "p:s0" not in written and "q:s0" not in written  # the first request's reply, the DOI one
        assert written["p:s3"] == [{"role": "user", "content": "Which work shows that adapter variant 3 halves the "
                                                                "memory of fine-tuning?"}]
        assert counts["writer"] == {"model": "writer-model", "turns": 1, "claims": 6, "written": 4, "requests": 5,
                                    "asked": 5, "cached": 0, "fallbacks": {
                                        "empty": 0, "too_long": 0, "doi_or_url": 2, "not_a_question": 0,
                                        "off_topic": 0, "not_a_conversation": 0}}
        assert len(AnswerCache(cache)) == 5  # garbage is cached too: asking again would not mend it

        monkeypatch.delenv(KEY_ENV)  # from the cache alone: no key, no request
        again, counts = write_questions(some, llm(srv.base_url, workers=1), cache)
        assert srv.requests == 5 and again == written
        assert (counts["writer"]["asked"], counts["writer"]["cached"]) == (0, 5)

        with pytest.raises(StageError, match=f"set the environment variable {KEY_ENV}"):
            write_questions(some, llm(srv.base_url, temperature=0.2), cache)  # another request: asked, needs the key


def test_requests_are_paced_and_bounded_in_flight(tmp_path, key):
    with OpenAIServer(question_for) as srv:
        srv.delay = 0.3
        written, _ = write_questions(claims(8), llm(srv.base_url, requests_per_second=10, workers=2),
                                     tmp_path / "w.sqlite")
    assert len(written) == 8 and srv.max_in_flight == 2
    # 10/s: starts 0.105 s apart (loopback jitter aside); unpaced, two workers would start in pairs
    gaps = [b - a for a, b in zip(srv.arrivals, srv.arrivals[1:])]
    assert min(gaps) >= 0.05 and srv.arrivals[-1] - srv.arrivals[0] >= 7 * 0.1


@pytest.mark.parametrize("status", [429, 500])
def test_a_rate_limit_or_server_error_is_retried(tmp_path, key, status):
    with OpenAIServer(question_for) as srv:
        srv.fail(status, retry_after="1" if status == 429 else None)
        written, _ = write_questions(claims(1), llm(srv.base_url), tmp_path / "w.sqlite")
    assert srv.requests == 2 and list(written) == ["p:s0"]


def test_an_error_no_retry_mends_stops_and_keeps_what_was_received(tmp_path, key):
    cache = tmp_path / "w.sqlite"
    with OpenAIServer(question_for) as srv:
        srv.fail(401, after=2)  # two claims answered, then the key is refused
        with pytest.raises(StageError) as refused:
            write_questions(claims(5), llm(srv.base_url, workers=1), cache)
        # every reply received is kept, the one to a request in flight when the error came too
        assert srv.requests in (3, 4) and len(AnswerCache(cache)) == srv.requests - 1
        message = str(refused.value)
        assert f"question writer at {srv.base_url} (model writer-model) answered 401" in message
        assert f"check the key in ${KEY_ENV}" in message and str(cache) in message
        written, counts = write_questions(claims(5), llm(srv.base_url, workers=1), cache)  # only the rest
        assert srv.requests == 6 and len(written) == 5 and counts["writer"]["asked"] == 5 - counts["writer"]["cached"]


def test_a_server_error_that_lasts_is_a_stage_error(tmp_path, key):
    with OpenAIServer(question_for) as srv:
        srv.fail(503, times=2)
        with pytest.raises(StageError, match=r"answered 503: .*still after 2 tries.*rerun when the server is well"):
            write_questions(claims(1), llm(srv.base_url, attempts=2), tmp_path / "w.sqlite")
        assert srv.requests == 2


def test_an_unreachable_endpoint_says_to_start_it(tmp_path, key):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    with pytest.raises(StageError, match=r"could not be reached .* after 2 tries.*start the server or correct "
                                         r"qa\.llm\.base_url"):
        write_questions(claims(1), llm(url, attempts=2), tmp_path / "w.sqlite")


def test_a_slow_endpoint_stops_at_the_deadline(tmp_path, key):
    with OpenAIServer(question_for) as srv:
        srv.delay = 3
        with pytest.raises(StageError, match=r"did not answer in time .*deadline_seconds 1 s in all"):
            write_questions(claims(1), llm(srv.base_url, timeout_seconds=1, deadline_seconds=1, attempts=1),
                            tmp_path / "w.sqlite")
        assert len(AnswerCache(tmp_path / "w.sqlite")) == 0


def test_without_the_openai_client_the_message_names_the_extra(tmp_path, key, monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)  # import openai now fails
    with pytest.raises(StageError, match=re.escape("pip install 'citetune[judge]' (the extra named 'judge' holds "
                                                   "the OpenAI client of qa.writer: llm too)")):
        write_questions(claims(1), llm("http://127.0.0.1:9/v1"), tmp_path / "w.sqlite")


# --- the qa stage ------------------------------------------------------------------------------------

@pytest.fixture
def matched(tmp_path):
    refs = [{"ref_key": f"k{i}", "ref_title": f"Adapters {i}", "ref_year": "2021", "doi": f"10.1000/a{i}",
             "match_status": "matched", "match_title": f"Study of adapter variant {i}", "match_year": "2021"}
            for i in range(4)]
    cits = [{"paper_id": f"p{j}", "sentence_id": f"s{i}", "context": f"Adapter variant {i} halves memory in run {j}.",
             "ref_key": f"k{i}"} for i in range(4) for j in range(5)]
    import pandas as pd

    pd.DataFrame(refs).to_csv(tmp_path / "references.csv", index=False)
    pd.DataFrame(cits).to_csv(tmp_path / "citations.csv", index=False)
    return tmp_path


def run_qa(d, base_url: str, **llm_overrides):
    qa = default_params("qa", holdout_works=0.0, modes=["closed_book", "retrieval"], writer="llm",
                        llm={"base_url": base_url, "model": "writer-model", "api_key_env": KEY_ENV,
                             "requests_per_second": 50, **llm_overrides}).model_dump(mode="json")
    (d / "params.yaml").write_text(yaml.safe_dump({"qa": qa}))
    return subprocess.run(
        [sys.executable, "-m", "stages.qa", "--params", str(d / "params.yaml"), "--citations", str(d / "citations.csv"),
         "--references", str(d / "references.csv"), "--out-dir", str(d / "sft"), "--metrics", str(d / "qa.json"),
         "--writer-cache", str(d / "writer.sqlite")],
        check=False, capture_output=True, text=True, env=os.environ | {KEY_ENV: "local-key"})


def records(d) -> list[dict]:
    return [r for s in ("train", "validation", "test") for r in read_jsonl(d / "sft" / f"{s}.jsonl")]


def test_the_stage_asks_the_llm_and_the_answer_stays_citetunes(matched):
    def writer(messages):  # claims of run 4 get a reply that is no question: they keep their template
        claim = messages[-1]["content"]
        return "Adapters are great." if "run 4" in claim else question_for(messages)

    with OpenAIServer(writer) as srv:
        r = run_qa(matched, srv.base_url)
        assert r.returncode == 0, r.stderr
        assert srv.requests == 20
        rows = records(matched)
        assert len(rows) == 40
        for row in rows:
            _, user, answer = row["messages"]
            question = user["content"].split("\n\n" + CANDIDATES_HEADER)[0]
            if "run 4" in row["claim"]:
                assert question in [t.format(context=row["claim"]) for t in QUESTION_TEMPLATES]
            else:
                assert question == question_for([{"content": row["claim"]}])
            i = row["claim"].split()[2]
            work = {"doi": f"10.1000/a{i}", "title": f"Study of adapter variant {i}", "year": "2021"}
            shown = row["mode"] == "closed_book" or f"10.1000/a{i}" in row["candidates"]
            assert answer == {"role": "assistant", "content": format_answer([work] if shown else [])}
            if row["mode"] == "retrieval":
                assert CANDIDATES_HEADER in user["content"] and "DOI: 10.1000/a" in user["content"]
        metrics = json.loads((matched / "qa.json").read_text())["writer"]
        assert (metrics["claims"], metrics["written"], metrics["asked"], metrics["cached"]) == (20, 16, 20, 0)
        assert metrics["fallbacks"]["not_a_question"] == 4
        card = (matched / "sft" / "README.md").read_text()
        assert "written by the LLM `writer-model` from the claim, for 16 of 20 claims" in card

        first = {s: (matched / "sft" / f"{s}.jsonl").read_text() for s in ("train", "test")}
        r = run_qa(matched, srv.base_url)  # a rerun: nothing asked, the same records
        assert r.returncode == 0, r.stderr
        assert srv.requests == 20 and first == {s: (matched / "sft" / f"{s}.jsonl").read_text() for s in first}
        assert json.loads((matched / "qa.json").read_text())["writer"]["cached"] == 20


def test_the_stage_writes_conversations_that_end_with_citetunes_answer(matched):
    def conversation(messages):
        claim = messages[-1]["content"]
        return json.dumps(["I am reading about memory use in fine-tuning.", "Adapters are one way to cut it.",
                           question_for(messages)] if "variant 3" not in claim else ["Hi", "Hello", "See doi:10.1000/a3?"])

    with OpenAIServer(conversation) as srv:
        r = run_qa(matched, srv.base_url, turns=2)
        assert r.returncode == 0, r.stderr
        assert "It has 3 messages" in srv.bodies[0]["messages"][0]["content"]
    for row in records(matched):
        roles = [m["role"] for m in row["messages"]]
        if "variant 3" in row["claim"]:  # the DOI reply: the template, one turn
            assert roles == ["system", "user", "assistant"]
            assert "10.1000/a3" not in row["messages"][1]["content"].split(CANDIDATES_HEADER)[0]
        else:
            assert roles == ["system", "user", "assistant", "user", "assistant"]
            assert row["messages"][1]["content"] == "I am reading about memory use in fine-tuning."
            assert row["messages"][3]["content"].startswith(question_for([{"content": row["claim"]}]))
        assert row["messages"][-1]["content"] == format_answer(
            [{"doi": d, "title": f"Study of adapter variant {d[-1]}", "year": "2021"} for d in row["dois"]
             if row["mode"] == "closed_book" or d in row["candidates"]])
    metrics = json.loads((matched / "qa.json").read_text())["writer"]
    assert (metrics["turns"], metrics["written"], metrics["fallbacks"]["doi_or_url"]) == (2, 15, 5)


def test_the_stage_without_a_model_or_with_the_endpoint_down_says_what_to_do(matched):
    r = run_qa(matched, "http://127.0.0.1:9/v1", model="")
    assert r.returncode == 1 and "set qa.llm.model" in r.stderr
    with OpenAIServer(question_for) as srv:
        srv.fail(401, times=100)
        r = run_qa(matched, srv.base_url)
    assert r.returncode == 1 and "answered 401" in r.stderr and "Traceback" not in r.stderr
    assert (matched / "writer.sqlite").exists() and not (matched / "sft").exists()
