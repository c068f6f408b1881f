"""Retrying HTTP requests politely, for every client citetune has: exponential backoff from a first
pause, doubling, and a server's Retry-After wins when it asks for longer.

An exception may carry `retry_after` (seconds, or None): the pause before the next try is then at
least that long, and never longer than `max_wait`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

_SECONDS = re.compile(r"\d+(?:\.\d+)?", re.ASCII)  # RFC 9110 says digits; a fraction does no harm


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header value: delay-seconds or an HTTP-date (GMT); None
    when there is none or it cannot be read."""
    value = (value or "").strip()
    if not value:
        return None
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" parses naive; HTTP dates are GMT
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def backoff(first_pause: float, max_wait: float) -> Callable[[RetryCallState], float]:
    """tenacity wait: first_pause, doubling with each attempt; the failure's retry_after wins when
    longer; never above max_wait."""
    def wait(state: RetryCallState) -> float:
        pause = first_pause * 2 ** (state.attempt_number - 1)
        asked = getattr(state.outcome.exception(), "retry_after", None) or 0.0
        return min(max_wait, max(pause, asked))

    return wait


def retrying(*, attempts: int, first_pause: float, max_wait: float, retry_on: Callable[[BaseException], bool],
             log: logging.Logger, service: str) -> Retrying:
    """A tenacity Retrying: at most `attempts` tries in all, retrying the failures retry_on accepts
    (the last one is re-raised as itself), each pause logged at INFO."""
    def before_sleep(state: RetryCallState) -> None:
        log.info("%s: %s; retry %d/%d in %.1f s", service, state.outcome.exception(), state.attempt_number,
                 attempts - 1, state.next_action.sleep)

    return Retrying(stop=stop_after_attempt(attempts), wait=backoff(first_pause, max_wait),
                    retry=retry_if_exception(retry_on), before_sleep=before_sleep, reraise=True)
