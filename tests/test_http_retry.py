"""The one retry policy both HTTP clients use: Retry-After read in both its forms, backoff doubling
from a first pause, the server's Retry-After winning when longer, a cap on every pause."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone

import pytest

from citetune.http_retry import (
    Deadline,
    DeadlineExceeded,
    retry_after,
    retrying,
    within,
)

NOW = datetime(2015, 10, 21, 7, 27, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(("value", "seconds"), [
    ("120", 120.0), (" 7 ", 7.0), ("1.5", 1.5), ("0", 0.0),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 30.0),
    ("Wed, 21 Oct 2015 07:28:00 -0000", 30.0),  # parsed without a zone; HTTP dates are GMT
    ("Wed, 21 Oct 2015 07:28:00 +0100", 0.0),  # an hour ago: no wait, never a negative one
    (None, None), ("", None), ("soon", None), ("-5", None), ("\u0663", None),  # an Arabic-Indic 3 is no delay
])
def test_retry_after_reads_delay_seconds_and_http_dates(value, seconds):
    assert retry_after(value, now=NOW) == seconds


class Busy(Exception):
    def __init__(self, retry_after=None):
        super().__init__(f"busy (Retry-After {retry_after})")
        self.retry_after = retry_after


def test_pauses_double_from_the_first_a_longer_retry_after_wins_and_none_exceeds_the_cap(caplog):
    caplog.set_level(logging.INFO)
    failures = iter([Busy(), Busy(retry_after=10.0), Busy(retry_after=0.5), Busy()])
    sleeps: list[float] = []

    def call():
        raise next(failures)

    policy = retrying(attempts=4, first_pause=1.0, max_wait=5.0, retry_on=lambda e: isinstance(e, Busy),
                      log=logging.getLogger("test"), service="API").copy(sleep=sleeps.append)
    with pytest.raises(Busy, match="busy"):  # the last failure itself, after 4 attempts
        policy(call)
    assert sleeps == [1.0, 5.0, 4.0]  # 1; 2 but Retry-After 10, capped at 5; 4 beats Retry-After 0.5
    assert "API: busy (Retry-After None); retry 1/3 in 1.0 s" in caplog.text


def test_a_failure_not_worth_retrying_is_raised_at_once():
    calls = []

    def call():
        calls.append(1)
        raise ValueError("bad request")

    policy = retrying(attempts=5, first_pause=0, max_wait=1, retry_on=lambda e: isinstance(e, Busy),
                      log=logging.getLogger("test"), service="API")
    with pytest.raises(ValueError):
        policy(call)
    assert calls == [1]


def test_a_retry_after_beyond_give_up_beyond_is_raised_at_once_without_a_pause():
    failures = iter([Busy(retry_after=3.0), Busy(retry_after=86400.0), Busy()])
    sleeps: list[float] = []

    def call():
        raise next(failures)

    policy = retrying(attempts=5, first_pause=1.0, max_wait=5.0, retry_on=lambda e: isinstance(e, Busy),
                      log=logging.getLogger("test"), service="API", give_up_beyond=5.0).copy(sleep=sleeps.append)
    with pytest.raises(Busy, match="Retry-After 86400"):
        policy(call)
    assert sleeps == [3.0]  # the short Retry-After waited out, the long one not at all


def test_a_deadline_cuts_a_body_that_keeps_coming():
    def trickle():
        while True:
            time.sleep(0.05)
            yield b"x"

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r"no whole answer from http://h/x within 0.3 s"):
        b"".join(Deadline("http://h/x", 0.3).chunks(trickle()))
    assert 0.3 <= time.monotonic() - started < 1
    assert b"".join(Deadline("http://h/x", 5).chunks([b"a", b"b"])) == b"ab"


def test_within_waits_no_longer_than_the_deadline_and_hands_a_late_answer_to_be_closed():
    answered, closed = threading.Event(), []

    def stuck():  # as a request whose headers never end would be, until the server lets go
        answered.wait(5)
        return "late answer"

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r"no whole answer from http://h/x within 0.3 s"):
        within(Deadline("http://h/x", 0.3), stuck, late=closed.append)
    assert 0.3 <= time.monotonic() - started < 1
    answered.set()
    for _ in range(100):
        if closed:
            break
        time.sleep(0.01)
    assert closed == ["late answer"]
    assert within(Deadline("http://h/x", 5), lambda: "on time", late=closed.append) == "on time"
    with pytest.raises(KeyError):  # the request's own failure, as itself
        within(Deadline("http://h/x", 5), lambda: {}["missing"])
