"""Questions written by an LLM (qa.writer: llm): each claim rewritten as the question a researcher would
ask, or as a short conversation that ends with it, through any OpenAI-compatible endpoint (chat_api.py).

The LLM sees the claim alone and writes user turns only (and, in a conversation, the assistant's earlier
replies): the answer that closes each record, with its DOIs, is always citetune's own
(answers.format_answer). Every reply is kept in an answer cache keyed by its request (model, messages,
options), so a rerun asks nothing it asked before. A reply that is empty, too long, holds a DOI, URL or
arXiv id, does not end in a question, or shares no word with its claim leaves that claim to the
templates, counted by reason. A failure of the endpoint ends the stage with what to do; every reply
received so far stays in the cache.
"""

from __future__ import annotations

import json
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from citetune.answer_cache import AnswerCache
from citetune.chat_api import ask, client, require
from citetune.errors import StageError
from citetune.http_retry import RateLimiter
from citetune.ids import without_ids
from citetune.words import STOP_WORDS, comparable_text

log = logging.getLogger(__name__)

SERVICE = "question writer"
EXTRA_NOTE = " (the extra named 'judge' holds the OpenAI client of qa.writer: llm too)"
QUESTION_INSTRUCTIONS = """You turn a sentence from a scientific paper into the question a researcher \
would ask to find the published work behind it. Keep its meaning and its technical terms. Do not answer \
the question, and write no title, author, DOI, URL or reference marker. Reply with the question alone, \
on one line, ending with a question mark."""
CONVERSATION_INSTRUCTIONS = """You write the start of a conversation between a researcher and a research \
assistant, about a sentence from a scientific paper. It has {messages} messages, alternating, from the \
researcher first and last: the researcher's last message asks, as one question on one line ending with a \
question mark, which published work supports the sentence's statement. Keep the sentence's meaning and \
technical terms. Nobody names a work, title, author, DOI, URL or reference marker, and the assistant's \
replies do not answer the final question. Reply with a JSON list of the {messages} messages' texts, and \
nothing else."""
FALLBACK_REASONS = ("empty", "too_long", "doi_or_url", "not_a_question", "off_topic", "not_a_conversation")
_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL)  # reasoning models' preamble
_QUOTES = "\"'“”‘’`"


def writer_request(claim: str, llm) -> dict:
    """The request for one claim, as sent and as the cache keys it: a question (llm.turns 1), or a
    conversation with llm.turns researcher messages."""
    system = (QUESTION_INSTRUCTIONS if llm.turns == 1
              else CONVERSATION_INSTRUCTIONS.format(messages=2 * llm.turns - 1))
    return {"model": llm.model, "messages": [{"role": "system", "content": system}, {"role": "user", "content": claim}],
            "temperature": llm.temperature, "max_tokens": llm.max_tokens}


def _words(text: str) -> set[str]:
    return {w for w in comparable_text(text).split() if len(w) > 2 and w not in STOP_WORDS}


def _texts(reply: str, turns: int) -> list[str] | None:
    """The reply's messages: the whole reply for a question; for a conversation, the first JSON list of
    2 * turns - 1 texts in it (strings, or objects with a "content"), code fences and prose around it
    allowed; None when there is none."""
    if turns == 1:
        return [reply]
    decoder = json.JSONDecoder()
    for start in (i for i, ch in enumerate(reply) if ch == "["):
        try:
            items, _ = decoder.raw_decode(reply, start)
        except json.JSONDecodeError:
            continue
        if not isinstance(items, list):
            continue
        texts = [i.get("content") if isinstance(i, dict) else i for i in items]
        if len(texts) == 2 * turns - 1 and all(isinstance(t, str) for t in texts):
            return texts
    return None


def read_reply(reply: str, claim: str, turns: int, max_chars: int) -> tuple[list[dict] | None, str]:
    """(the user and assistant turns that lead to the answer, '') from the LLM's reply, or (None, the
    reason it is not used: one of FALLBACK_REASONS)."""
    reply = _THINKING.sub("", reply or "").strip()
    if not reply:
        return None, "empty"
    texts = _texts(reply, turns)
    if texts is None:
        return None, "not_a_conversation"
    texts = [t.strip().strip(_QUOTES).strip() for t in texts]
    if not all(texts):
        return None, "empty"
    if any(len(t) > max_chars for t in texts):
        return None, "too_long"
    if any(without_ids(t) != t for t in texts):  # the LLM never writes an identifier, only citetune does
        return None, "doi_or_url"
    if "\n" in texts[-1] or not texts[-1].endswith("?"):
        return None, "not_a_question"
    if not _words(" ".join(texts[::2])) & _words(claim):
        return None, "off_topic"
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)], ""


def write_questions(claims: list[dict], llm, cache_path: str | Path) -> tuple[dict[str, list[dict]], dict]:
    """({claim id: the turns before the answer, ending with the user's question}, counts) for the claims
    whose reply is usable; the others are left to the templates. `llm` is params.qa.llm. Each distinct
    request is asked once, and only when the cache has no reply to it."""
    per_claim = [writer_request(c["claim"], llm) for c in claims]
    keys = [AnswerCache.key(r) for r in per_claim]
    requests = dict(zip(keys, per_claim))  # a sentence found in two papers is asked once
    cache = AnswerCache(cache_path)
    replies = {k: answer["reply"] for k, r in requests.items() if (answer := cache.get(r)) is not None}
    todo = [k for k in requests if k not in replies]
    if todo:
        replies |= _ask_all({k: requests[k] for k in todo}, llm, cache)
    written, fallbacks = {}, dict.fromkeys(FALLBACK_REASONS, 0)
    for c, key in zip(claims, keys):
        turns, reason = read_reply(replies[key], c["claim"], llm.turns, llm.max_chars)
        if turns is None:
            fallbacks[reason] += 1
        else:
            written[c["id"]] = turns
    counts = {"writer": {"model": llm.model, "turns": llm.turns, "claims": len(claims), "written": len(written),
                         "requests": len(requests), "asked": len(todo), "cached": len(requests) - len(todo),
                         "fallbacks": fallbacks}}
    if sum(fallbacks.values()):
        log.warning("%d of %d claims keep a template question: %s", sum(fallbacks.values()), len(claims),
                    {k: v for k, v in fallbacks.items() if v})
    return written, counts


def _ask_all(requests: dict[str, dict], llm, cache: AnswerCache) -> dict[str, str]:
    """Each request's reply, kept in the cache as it arrives; the first failure that retries did not mend
    ends the run (replies already received stay cached)."""
    openai = require("openai", "judge", EXTRA_NOTE)
    chat = client(llm.base_url, llm.api_key_env, llm.timeout_seconds, SERVICE, EXTRA_NOTE)
    limiter = RateLimiter(llm.requests_per_second, llm.workers)
    deadline = time.monotonic() + llm.deadline_seconds

    def ask_and_keep(request: dict) -> str:
        reply = ask(chat, request["model"], request["messages"], deadline=deadline, attempts=llm.attempts,
                    request_timeout=llm.timeout_seconds, service=SERVICE, limiter=limiter,
                    temperature=request["temperature"], max_tokens=request["max_tokens"])
        cache.put(request, {"reply": reply})
        return reply

    replies = {}
    log.info("asking %s (model %s) for %d questions", llm.base_url, llm.model, len(requests))
    with ThreadPoolExecutor(llm.workers) as pool:
        futures = {pool.submit(ask_and_keep, r): k for k, r in requests.items()}
        for future in as_completed(futures):
            try:
                replies[futures[future]] = future.result()
            except (TimeoutError, openai.APIError) as e:
                pool.shutdown(cancel_futures=True)  # requests in flight finish, and are cached
                raise StageError(_failure(e, llm, cache.path)) from e
    return replies


def _failure(e: Exception, llm, cache_path: Path) -> str:
    """What went wrong with the endpoint, and what to do."""
    import openai

    where = f"the {SERVICE} at {llm.base_url} (model {llm.model})"
    kept = f"; the replies received so far are kept in {cache_path}, and a rerun asks only the others"
    if isinstance(e, (TimeoutError, openai.APITimeoutError)):
        return (f"{where} did not answer in time (qa.llm.timeout_seconds {llm.timeout_seconds:g} s per request, "
                f"qa.llm.deadline_seconds {llm.deadline_seconds:g} s in all){kept}: rerun, or raise them")
    if isinstance(e, openai.APIConnectionError):
        return (f"{where} could not be reached ({e}) after {llm.attempts} tries{kept}: start the server or "
                f"correct qa.llm.base_url, then rerun")
    if isinstance(e, openai.APIStatusError) and (e.status_code >= 500 or e.status_code == 429):
        return (f"{where} answered {e.status_code}: {e.message}, still after {llm.attempts} tries{kept}: "
                f"rerun when the server is well, or lower qa.llm.requests_per_second")
    status = getattr(e, "status_code", "an error")
    return (f"{where} answered {status}: {getattr(e, 'message', e)}{kept}: check the key in "
            f"${llm.api_key_env}, qa.llm.model and qa.llm.base_url")
