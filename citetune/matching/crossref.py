"""The Crossref backend: the REST API through habanero, within Crossref's limits, every answer cached.

Limits: Crossref publishes them per pool and kind of request (search: 3 requests per second with at
most 3 in flight in the polite pool, 1 per second and 1 in flight in the public one; single-record
look-ups: 10/s and 3, 5/s and 1); those are the defaults, and each response's x-rate-limit-limit /
x-rate-limit-interval headers lower them when they say less. 429 and 5xx are retried with backoff
that honours Retry-After; timeouts and dropped connections are retried; an answer that is not JSON
is an error for that reference, not the run. `timeout` is the deadline of a whole request, headers
and body included. A Retry-After longer than `max_wait_seconds` stops the backend asking: every later request
not in the cache fails at once with the server's reason (`stopped`), so that the stage can end and
be rerun later from the cache. A string that is not a well-formed DOI is never put in a URL.

habanero builds the requests and reads the answers; habanero_transport (the one place that reaches
into habanero's internals) sends them through one shared client that adds the Crossref Plus token
when CROSSREF_PLUS_TOKEN is set and hands each response's rate-limit headers to the limiter.

Cache: every answer (found, not found) in an SQLite file keyed by the request, written as it
arrives, so that a rerun (after a kill, a threshold change, more papers) asks only what is new; a
cache hit costs no rate-limit budget. offline=True answers from the cache alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from citetune.answer_cache import AnswerCache
from citetune.http_retry import (
    DeadlineExceeded,
    RateLimiter,
    asks_longer,
    retry_after,
    retrying,
)
from citetune.ids import is_doi
from citetune.library_hooks import HookMissing

log = logging.getLogger(__name__)

# Only the fields validation reads: smaller answers, smaller cache.
SEARCH_SELECT = ["DOI", "title", "subtitle", "author", "issued", "published-print", "published-online",
                 "container-title", "short-container-title", "volume", "issue", "page", "article-number",
                 "type", "score"]
# Crossref's published limits: (requests per second, requests in flight).
LIMITS = {("polite", "search"): (3.0, 3), ("polite", "lookup"): (10.0, 3),
          ("public", "search"): (1.0, 1), ("public", "lookup"): (5.0, 1)}


class LookupFailed(RuntimeError):
    """A Crossref request that failed (after retries, where retrying made sense)."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500


def _as_lookup_failed(exc: Exception) -> LookupFailed:
    """habanero raises httpx2.HTTPStatusError, its RequestError, RuntimeError wrapping a transport
    error, or a JSON error for an answer that is not JSON."""
    import httpx2
    from habanero.exceptions import RequestError

    if isinstance(exc, LookupFailed):
        return exc
    if isinstance(exc, DeadlineExceeded):
        return LookupFailed(str(exc))
    if isinstance(exc, httpx2.HTTPStatusError):
        r = exc.response
        return LookupFailed(f"HTTP {r.status_code} {r.reason_phrase}", r.status_code,
                            retry_after(r.headers.get("Retry-After")))
    if isinstance(exc, RequestError):
        return LookupFailed(f"HTTP {exc.status_code}: {str(exc.error)[:200]}", int(exc.status_code))
    cause = exc if isinstance(exc, httpx2.TransportError) else exc.__cause__
    if isinstance(cause, httpx2.TransportError):
        return LookupFailed(f"connection failed: {type(cause).__name__}: {cause}")
    if isinstance(exc, ValueError):  # json.JSONDecodeError, habanero's "not JSON" check
        return LookupFailed(f"malformed answer: {exc}", status=0)
    return LookupFailed(f"{type(exc).__name__}: {exc}", status=0)


_local = threading.local()  # the limiter the current thread's request belongs to


class CrossrefBackend:
    """Crossref's REST API through habanero: polite pool with a mailto, Crossref's limits, retries
    with backoff that honour Retry-After, and every answer cached."""

    holds_arxiv = False  # arXiv DOIs are DataCite's; Crossref answers 404 for them

    def __init__(self, api_url: str, mailto: str | None, timeout: float, cache_path: str | Path,
                 max_attempts: int = 5, backoff_seconds: float = 2.0, max_wait_seconds: float = 120.0,
                 offline: bool = False, limits: dict[str, tuple[float, int]] | None = None):
        from habanero import Crossref

        from citetune.matching import habanero_transport

        self.api_url = api_url.rstrip("/")
        self.mailto = mailto or ""
        self.client = Crossref(base_url=self.api_url, mailto=mailto or None, timeout=timeout, ua_string="citetune")
        pool = "polite" if mailto else "public"
        limits = limits or {}
        self.limiters = {kind: RateLimiter(*limits.get(kind, LIMITS[(pool, kind)])) for kind in ("search", "lookup")}
        self.cache = AnswerCache(cache_path)
        self.offline = offline
        self.max_attempts, self.backoff, self.max_wait = max_attempts, backoff_seconds, max_wait_seconds
        self.requests = 0  # made over the network (cache misses), for logs and tests
        self.stopped = ""  # why the backend no longer asks Crossref ('' while it does)
        self.cache_hits = 0
        self._count = threading.Lock()
        habanero_transport.install(self._observe)

    def concurrency(self) -> int:
        return max(lim.concurrency for lim in self.limiters.values())

    def describe(self) -> str:
        pool = f"polite pool as {self.mailto}" if self.mailto else "public pool (set match.mailto or CROSSREF_MAILTO)"
        limits = ", ".join(f"{k} {lim.rate:g}/s x{lim.concurrency}" for k, lim in self.limiters.items())
        return f"Crossref at {self.api_url}, {pool}; {limits}; cache {self.cache.path} ({len(self.cache)} answers)"

    def activity(self) -> dict[str, int | str]:
        return {"requests": self.requests, "cached": self.cache_hits}

    def _observe(self, response) -> None:
        limiter = getattr(_local, "limiter", None)
        if limiter is not None:
            limiter.observe(response.headers)

    def lookup(self, doi: str) -> dict | None:
        if not is_doi(doi):  # no work has it, and its dot segments would move the request elsewhere
            return None
        answer = self._answer("lookup", {"kind": "work", "doi": doi.lower()}, lambda: self._work(doi))
        return answer["message"] if answer["found"] else None

    def search(self, text: str, rows: int) -> list[dict]:
        def call():
            res = self.client.works(query_bibliographic=text, limit=rows, select=SEARCH_SELECT)
            if not isinstance(res, dict) or not isinstance(res.get("message"), dict):
                raise LookupFailed(f"malformed answer: {str(res)[:120]}", status=0)
            return {"found": True, "message": res["message"].get("items") or []}

        request = {"kind": "search", "query": text, "rows": rows, "select": SEARCH_SELECT}
        return self._answer("search", request, call)["message"]

    def _work(self, doi: str) -> dict:
        try:
            # DOIs may hold '?', '#', '<', ';' (SICI): percent-encode them into the path.
            res = self.client.works(ids=quote(doi, safe="/:;()._-"))
        except Exception as e:
            if _as_lookup_failed(e).status == 404:
                return {"found": False, "message": None}
            raise
        if not isinstance(res, dict) or not isinstance(res.get("message"), dict):
            raise LookupFailed(f"malformed answer: {str(res)[:120]}", status=0)
        return {"found": True, "message": res["message"]}

    def _answer(self, kind: str, request: dict, call: Callable[[], dict]) -> dict:
        request = {"api": self.api_url, **request}
        cached = self.cache.get(request)
        if cached is not None:
            with self._count:
                self.cache_hits += 1
            return cached
        if self.offline:
            raise LookupFailed("offline and not in the cache", status=0)
        if self.stopped:
            raise LookupFailed(self.stopped, status=0)
        answer = self._with_retries(self.limiters[kind], call)
        self.cache.put(request, answer)
        return answer

    def _with_retries(self, limiter: RateLimiter, call: Callable[[], dict]) -> dict:
        from citetune.matching.habanero_transport import sent_through

        def once() -> dict:
            if self.stopped:  # said while this request waited to retry: it is not sent again
                raise LookupFailed(self.stopped, status=0)
            with limiter:
                with self._count:
                    self.requests += 1
                _local.limiter = limiter
                try:
                    return sent_through(call)
                except HookMissing:
                    raise
                except Exception as e:
                    raise _as_lookup_failed(e) from e
                finally:
                    _local.limiter = None

        retry = retrying(attempts=self.max_attempts, first_pause=self.backoff, max_wait=self.max_wait,
                         retry_on=lambda e: isinstance(e, LookupFailed) and e.retryable, log=log, service="Crossref",
                         give_up_beyond=self.max_wait)
        try:
            return retry(once)
        except LookupFailed as e:
            if asks_longer(e, self.max_wait):
                self.stop(e)
                raise LookupFailed(self.stopped, e.status) from e
            if e.retryable:
                e.args = (f"{e} (after {self.max_attempts} attempts)",)
            raise

    def stop(self, failure: LookupFailed) -> None:
        """Ask Crossref nothing more: it wants a longer pause than the ceiling allows."""
        with self._count:
            if not self.stopped:
                self.stopped = (f"stopped asking Crossref: it asked for a pause of {failure.retry_after:g} s "
                                f"(Retry-After), longer than match.max_retry_after_seconds = {self.max_wait:g} "
                                f"({failure})")
                log.warning("%s", self.stopped)
