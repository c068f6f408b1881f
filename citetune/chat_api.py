"""An OpenAI-compatible chat endpoint (vLLM, Ollama, OpenAI) through the `openai` client (extra `judge`):
the client, one request retried with backoff until a deadline, and which failures a retry may mend.
Shared by the answer judge (judges.py) and the question writer (writer.py)."""

from __future__ import annotations

import importlib
import logging
import os
import time
from contextlib import nullcontext

from tenacity import stop_after_attempt, stop_before_delay

from citetune.errors import StageError
from citetune.http_retry import retry_after, retrying

log = logging.getLogger(__name__)


def require(module: str, extra: str, note: str = ""):
    """The module, or a StageError naming the extra that installs it (and `note`, when given)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise StageError(f"{module} is not installed: pip install 'citetune[{extra}]'{note}") from e


def client(base_url: str, api_key_env: str, request_timeout: float, service: str, note: str = ""):
    """An openai.OpenAI for `base_url`, its key read from the environment variable `api_key_env`."""
    openai = require("openai", "judge", note)
    key = os.environ.get(api_key_env)
    if not key:
        raise StageError(f"the {service} needs an API key: set the environment variable {api_key_env} "
                         f"(a local OpenAI-compatible server accepts any value)")
    # retries are ours (ask), so that they stop at the deadline
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=request_timeout)


def transient(exc: BaseException) -> bool:
    """Whether a retry may mend the failure: no connection (timeouts included), 429, 5xx."""
    import openai

    return isinstance(exc, (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError))


def ask(chat, model: str, messages: list[dict], *, deadline: float, attempts: int, request_timeout: float,
        service: str, limiter=None, **options) -> str:
    """The reply's text, retried with backoff (the server's Retry-After wins) until `deadline`
    (time.monotonic()); each try goes through `limiter` (a RateLimiter) when one is given; `options`
    (temperature, max_tokens...) go with the request."""
    import openai

    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"the {service}'s deadline passed before this request was sent")
    policy = retrying(attempts=attempts, first_pause=1.0, max_wait=60.0, retry_on=transient, log=log,
                      service=service)
    for attempt in policy.copy(stop=stop_after_attempt(attempts) | stop_before_delay(remaining)):
        with attempt, limiter or nullcontext():
            timeout = min(request_timeout, max(deadline - time.monotonic(), 1.0))
            try:
                response = chat.chat.completions.create(model=model, messages=messages, timeout=timeout, **options)
            except openai.APIStatusError as e:
                e.retry_after = retry_after(e.response.headers.get("retry-after"))  # read by the backoff
                raise
            return response.choices[0].message.content or ""
    raise AssertionError("unreachable: tenacity re-raises the last failure")
