"""Retrying HTTP requests politely, for every client citetune has: exponential backoff from a first
pause, doubling, and a server's Retry-After wins when it asks for longer.

An exception may carry `retry_after` (seconds, or None): the pause before the next try is then at
least that long, and never longer than `max_wait`; with `give_up_beyond`, a failure asking for longer
is not retried at all (the caller stops asking that server). RateLimiter paces the requests
themselves: so many starts per second, so many in flight. Deadline bounds a whole request, and
`within` holds its caller no longer than that, whatever the server trickles.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

log = logging.getLogger(__name__)
T = TypeVar("T")

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


def asks_longer(exc: BaseException, seconds: float) -> bool:
    """Whether a failure's Retry-After asks for a pause longer than `seconds`."""
    return (getattr(exc, "retry_after", None) or 0.0) > seconds


def retrying(*, attempts: int, first_pause: float, max_wait: float, retry_on: Callable[[BaseException], bool],
             log: logging.Logger, service: str, give_up_beyond: float | None = None) -> Retrying:
    """A tenacity Retrying: at most `attempts` tries in all, retrying the failures retry_on accepts
    (the last one is re-raised as itself), each pause logged at INFO. A failure whose Retry-After
    asks for longer than `give_up_beyond` seconds is re-raised at once."""
    def worth_retrying(exc: BaseException) -> bool:
        return retry_on(exc) and (give_up_beyond is None or not asks_longer(exc, give_up_beyond))

    def before_sleep(state: RetryCallState) -> None:
        log.info("%s: %s; retry %d/%d in %.1f s", service, state.outcome.exception(), state.attempt_number,
                 attempts - 1, state.next_action.sleep)

    return Retrying(stop=stop_after_attempt(attempts), wait=backoff(first_pause, max_wait),
                    retry=retry_if_exception(worth_retrying), before_sleep=before_sleep, reraise=True)


class DeadlineExceeded(TimeoutError):
    """A request that had no whole answer within its deadline: worth another try later."""

    def __init__(self, url: str, seconds: float):
        super().__init__(f"no whole answer from {url} within {seconds:g} s (the deadline of one request)")
        self.url, self.seconds = url, seconds


class Deadline:
    """The time one request may take, connecting, waiting and reading the whole body together: the
    libraries' own timeouts bound each read, so a server that trickles its answer a byte at a time
    would never be cut off by them. `chunks` checks the clock as each piece of the body arrives (a
    body read ends at most one read timeout after the deadline); `within` bounds the rest."""

    def __init__(self, url: str, seconds: float):
        self.url, self.seconds = str(url), seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds still allowed; DeadlineExceeded when there are none."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(self.url, self.seconds)
        return left

    def chunks(self, body: Iterable[bytes]) -> Iterator[bytes]:
        self.left()
        for chunk in body:
            self.left()
            yield chunk


def within(deadline: Deadline, request: Callable[[], T], late: Callable[[T], None] | None = None) -> T:
    """request()'s answer if it comes before the deadline, else DeadlineExceeded.

    The libraries' timeouts bound each read, and a deadline checked between body chunks never sees
    a server that trickles its headers: so request() runs in a daemon thread and the caller waits
    for it no longer than the deadline. A thread left behind ends on its own (its body reads check
    the deadline; headers end when the server stops or exceeds the library's limits); an answer it
    gets too late goes to `late` (to close it). The pool the request came from is left as it is:
    other requests may be sharing it."""
    done = threading.Event()
    lock = threading.Lock()
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["answer"] = request()
        except BaseException as e:  # noqa: BLE001 - handed to the caller, who raises it
            outcome["error"] = e
        with lock:
            done.set()
            abandoned = outcome.get("abandoned", False)
        if abandoned and "answer" in outcome and late is not None:
            late(outcome["answer"])

    threading.Thread(target=run, name=f"request {deadline.url}", daemon=True).start()
    done.wait(max(0.0, deadline.end - time.monotonic()))
    with lock:
        if not done.is_set():
            outcome["abandoned"] = True
            raise DeadlineExceeded(deadline.url, deadline.seconds)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["answer"]


class RateLimiter:
    """At most `rate` request starts per second, evenly spaced, and `concurrency` in flight; the
    rate only ever goes down, when the server's headers say less. Starts are spaced 5% wider than
    1/rate: the server counts arrivals, and a request that left on time may arrive a little early
    after one that was delayed."""

    MARGIN = 1.05

    def __init__(self, rate: float, concurrency: int):
        self.rate, self.concurrency = rate, concurrency
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._next = 0.0

    def __enter__(self):
        self._slots.acquire()
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.MARGIN / self.rate
        if start > now:
            time.sleep(start - now)
        return self

    def __exit__(self, *exc) -> None:
        self._slots.release()

    def observe(self, headers) -> None:
        """Lower the rate to what x-rate-limit-limit / x-rate-limit-interval allow."""
        limit, interval = headers.get("x-rate-limit-limit"), headers.get("x-rate-limit-interval")
        try:
            seconds = float(re.sub(r"[^\d.]", "", interval or "1") or 1)
            allowed = float(limit) / seconds if limit else None
        except ValueError:
            return
        if allowed and allowed < self.rate:
            with self._lock:
                if allowed < self.rate:
                    log.info("the server allows %g requests/s here; slowing down from %g", allowed, self.rate)
                    self.rate = allowed
