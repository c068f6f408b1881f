"""A loopback HTTP server that speaks enough of the Crossref REST API for tests.

GET /works?query.bibliographic=...&rows=N answers a work-list ranked by how many rare words of
the query each record's bibliographic string shares (Crossref's own relevance is similar in
spirit; each item carries that sum, times 10, as its "score"); `select` keeps only the named
fields. GET /works/{doi} answers the work, or 404 "Resource not found." as Crossref does.

Faults are queued with `fail`, for all requests or only those whose decoded URL contains a given
text: a status with an optional Retry-After and an optional JSON error body; "drop" (connection
closed without an answer); "timeout" (answer normally after `timeout_sleep` seconds); "malformed"
(200 application/json whose body is cut-short JSON); "empty" (200 with an empty body).

Crossref's rate limits, per request class ("search": GET /works, "work": GET /works/{doi}):
`limits = {"search": Limit(rate=3, interval=1.0, concurrency=3)}` answers 429 (JSON body,
Retry-After: 1, counted in `too_many`) to a request that would make more than `rate` requests of
its class start within `interval` seconds, or more than `concurrency` be in flight; every response
of a limited class carries x-rate-limit-limit / x-rate-limit-interval. `advertise = {"search":
(2, 1.0)}` advertises, and enforces, a lower rate than `limits`. `latency` makes every answered
request take that long (outside the lock, so requests overlap). `log` holds (kind, start, end,
status) of every request (time.monotonic()); `max_in_flight(kind)` and `rate(kind, window)` read it.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from citetune.testing.loopback import LoopbackServer, QuietHandler

_WORD = re.compile(r"[a-z0-9]+")
KINDS = ("search", "work")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _bib(rec: dict) -> str:
    authors = " ".join(a.get("family", "") for a in rec.get("author", []))
    year = str(rec.get("issued", {}).get("date-parts", [[""]])[0][0])
    return " ".join([authors, *(rec.get("title") or []), *(rec.get("container-title") or []), year,
                     str(rec.get("volume") or ""), str(rec.get("page") or "")])


@dataclass
class Fault:
    # an HTTP status, or "drop" (close the connection without answering), "timeout" (answer
    # normally after CrossrefServer.timeout_sleep seconds), "malformed" (200, body not JSON),
    # "empty" (200, empty body)
    status: int | str
    times: int | None = 1  # None: every matching request
    when: str | None = None  # only requests whose decoded URL contains this text
    retry_after: str | None = None
    json_body: bool = False


@dataclass
class Limit:
    """Crossref-like limit for one request class; a None field is not enforced."""
    rate: int | None = None  # requests allowed to start within any `interval` seconds
    interval: float = 1.0
    concurrency: int | None = None  # requests allowed in flight at once


def _interval_header(interval: float) -> str:
    return f"{interval:g}s"


class CrossrefServer(LoopbackServer):
    """Run with `with CrossrefServer(records) as srv:`; srv.base_url is the value for match.api_url."""

    def __init__(self, records: list[dict]):
        self.records = {r["DOI"].lower(): r for r in records}
        self.bibs = {doi: _words(_bib(r)) for doi, r in self.records.items()}
        df = Counter(w for ws in self.bibs.values() for w in ws)
        self.idf = {w: math.log(1 + len(self.records) / n) for w, n in df.items()}
        self.faults: list[Fault] = []
        self.hits: Counter = Counter()  # "search" and "work" -> number of requests (429s included)
        self.paths: list[str] = []
        self.user_agents: list[str] = []
        self.tokens: list[str] = []  # the Crossref-Plus-API-Token header of each request ('' when absent)
        self.limits: dict[str, Limit | None] | None = None  # None / missing kind: unlimited
        self.advertise: dict[str, tuple[int, float]] = {}  # kind -> (rate, interval) advertised and enforced
        self.too_many: Counter = Counter()  # kind -> requests answered 429 by the limits
        self.latency: float = 0.0  # seconds every answered (not rate-limited) request takes
        self.timeout_sleep: float = 5.0  # seconds a "timeout" fault waits before answering
        self.log: list[tuple[str, float, float, int | str]] = []  # (kind, start, end, status)
        self._starts: dict[str, list[float]] = {k: [] for k in KINDS}  # accepted requests' starts
        self._in_flight: Counter = Counter()  # accepted requests being answered
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.base_url = self._serve(self._handler())

    def __exit__(self, *exc) -> None:
        self._stop.set()  # wakes requests sleeping for latency or a "timeout" fault
        super().__exit__(*exc)

    def fail(self, status: int | str, times: int | None = 1, when: str | None = None,
             retry_after: str | None = None, json_body: bool = False) -> None:
        with self._lock:
            self.faults.append(Fault(status, times, when, retry_after, json_body))

    def requests(self) -> int:
        return sum(self.hits.values())

    def _ranked(self, query: str) -> list[tuple[float, str]]:
        words = _words(query)
        scored = [(sum(self.idf[w] for w in words & bib), doi) for doi, bib in self.bibs.items()]
        return sorted((s, doi) for s, doi in scored if s > 0)[::-1]

    def search(self, query: str, rows: int) -> list[dict]:
        return [dict(self.records[doi], score=round(10 * s, 3)) for s, doi in self._ranked(query)[:rows]]

    # -- the request log ------------------------------------------------------------------------

    def _entries(self, kind: str, answered_only: bool) -> list[tuple[float, float]]:
        with self._lock:
            return [(s, e) for k, s, e, st in self.log if k == kind and not (answered_only and st == 429)]

    def max_in_flight(self, kind: str, answered_only: bool = False) -> int:
        """Most requests of `kind` in flight at once (answered_only: leave out 429s)."""
        events = sorted([(s, 1) for s, _ in self._entries(kind, answered_only)]
                        + [(e, -1) for _, e in self._entries(kind, answered_only)])  # ends sort first
        best = cur = 0
        for _, d in events:
            cur += d
            best = max(best, cur)
        return best

    def rate(self, kind: str, window: float = 1.0, answered_only: bool = False) -> int:
        """Largest number of requests of `kind` started within any `window` seconds."""
        starts = sorted(s for s, _ in self._entries(kind, answered_only))
        best = j = 0
        for i, s in enumerate(starts):
            while starts[j] <= s - window:
                j += 1
            best = max(best, i - j + 1)
        return best

    # -- limits ---------------------------------------------------------------------------------

    def _limit(self, kind: str) -> tuple[int | None, float, int | None]:
        """(rate, interval, concurrency) enforced for `kind`."""
        lim = (self.limits or {}).get(kind) or Limit()
        rate, interval = lim.rate, lim.interval
        if kind in self.advertise:
            rate, interval = self.advertise[kind]
        return rate, interval, lim.concurrency

    def _admit(self, kind: str, now: float) -> tuple[bool, dict[str, str]]:
        """Under the lock: whether a request of `kind` starting `now` may go on, and the rate headers."""
        rate, interval, concurrency = self._limit(kind)
        headers = {}
        if rate is not None:
            headers = {"x-rate-limit-limit": str(rate), "x-rate-limit-interval": _interval_header(interval)}
            starts = self._starts[kind]
            while starts and starts[0] <= now - interval:
                starts.pop(0)
            if len(starts) >= rate:
                return False, headers
        if concurrency is not None and self._in_flight[kind] >= concurrency:
            return False, headers
        self._starts[kind].append(now)
        self._in_flight[kind] += 1
        return True, headers

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stop.wait(seconds)

    def _take_fault(self, target: str) -> Fault | None:
        for f in self.faults:
            if f.when is None or f.when.lower() in target.lower():
                if f.times is not None:
                    f.times -= 1
                    if f.times <= 0:
                        self.faults.remove(f)
                return f
        return None

    def _handler(self):
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                target = unquote(self.path).replace("+", " ")
                self._extra: dict[str, str] = {}
                self._status: int | str = 0
                with server._lock:
                    start = time.monotonic()
                    server.paths.append(target)
                    server.user_agents.append(self.headers.get("User-Agent", ""))
                    server.tokens.append(self.headers.get("Crossref-Plus-API-Token", ""))
                    kind = "search" if url.path.rstrip("/") == "/works" else "work"
                    server.hits[kind] += 1
                    admitted, self._extra = server._admit(kind, start)
                    fault = server._take_fault(target) if admitted else None
                    if not admitted:
                        server.too_many[kind] += 1
                try:
                    if not admitted:
                        return self._too_many()
                    server._sleep(server.latency)
                    if fault is not None and fault.status == "timeout":
                        server._sleep(server.timeout_sleep)
                    elif fault is not None:
                        return self._fault(fault)
                    return self._answer(kind, url)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. timed out)
                    self.close_connection = True
                finally:
                    with server._lock:
                        if admitted:
                            server._in_flight[kind] -= 1
                        server.log.append((kind, start, time.monotonic(), self._status))

            def _answer(self, kind: str, url) -> None:
                if kind == "search":
                    q = {k: v[0] for k, v in parse_qs(url.query).items()}
                    query = q.get("query.bibliographic") or q.get("query") or ""
                    items = server.search(query, int(q.get("rows", 20)))
                    total = len(server._ranked(query))  # every record matching, as Crossref counts
                    if q.get("select"):
                        keep = set(q["select"].split(","))
                        items = [{k: v for k, v in it.items() if k in keep} for it in items]
                    message = {"items": items, "total-results": total, "items-per-page": len(items),
                               "query": {"start-index": 0, "search-terms": query}}
                    return self._json(200, {"status": "ok", "message-type": "work-list",
                                            "message-version": "1.0.0", "message": message})
                if url.path.startswith("/works/"):
                    doi = unquote(url.path[len("/works/"):]).lower()
                    rec = server.records.get(doi)
                    if rec is not None:
                        return self._json(200, {"status": "ok", "message-type": "work",
                                                "message-version": "1.0.0", "message": rec})
                return self._send(404, b"Resource not found.", "text/plain")

            def _too_many(self) -> None:
                body = {"status": "error", "message-type": "exception", "message-version": "1.0.0",
                        "message": [{"type": "rate-limit-exceeded",
                                     "message": "Too many requests: you have exceeded the rate or "
                                                "concurrency limit; slow down and retry later."}]}
                return self._send(429, json.dumps(body).encode(), "application/json;charset=utf-8",
                                  {"Retry-After": "1"})

            def _fault(self, fault: Fault) -> None:
                if fault.status == "drop":  # connection closed without a response
                    self._status = "drop"
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return None
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                if fault.status == "malformed":  # JSON cut short
                    return self._send(200, b'{"status":"ok","message":{"items":[', "application/json", headers)
                if fault.status == "empty":
                    return self._send(200, b"", "application/json", headers)
                status = int(fault.status)
                if fault.json_body:
                    body = {"status": "error", "message-type": "exception", "message-version": "1.0.0",
                            "message": [{"type": "server-error", "message": f"Server error {status}"}]}
                    return self._send(status, json.dumps(body).encode(), "application/json", headers)
                return self._send(status, f"Error {status}".encode(), "text/plain", headers)

            def _json(self, status: int, obj: dict) -> None:
                self._send(status, json.dumps(obj).encode(), "application/json;charset=utf-8")

            def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
                self._status = status
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in {**self._extra, **(headers or {})}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        return Handler


if __name__ == "__main__":  # self-check: 20 concurrent searches against a limited server
    import requests

    recs = [{"DOI": f"10.1234/x{i}", "title": [f"Paper {i} on topic {i % 3}"], "author": [{"family": "Smith"}],
             "issued": {"date-parts": [[2000 + i]]}} for i in range(10)]
    with CrossrefServer(recs) as srv:
        srv.limits = {"search": Limit(rate=3, interval=1.0, concurrency=3),
                      "work": Limit(rate=10, interval=1.0, concurrency=3)}
        srv.latency = 0.2
        results: list = []
        barrier = threading.Barrier(20)

        def get(i: int) -> None:
            with requests.Session() as s:
                barrier.wait()
                r = s.get(f"{srv.base_url}/works", params={"query.bibliographic": f"topic {i % 3}", "rows": 2})
                results.append(r)

        threads = [threading.Thread(target=get, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ok = [r for r in results if r.status_code == 200]
        print("statuses:", dict(Counter(r.status_code for r in results)), "too_many:", dict(srv.too_many))
        print("max in flight (answered):", srv.max_in_flight("search", answered_only=True),
              "(all):", srv.max_in_flight("search"), "rate/1s:", srv.rate("search"),
              "answered rate/1s:", srv.rate("search", answered_only=True))
        print("headers:", {k: v for k, v in results[0].headers.items() if k.lower().startswith(("x-rate", "retry"))},
              "first item:", {k: ok[0].json()["message"]["items"][0][k] for k in ("DOI", "score")},
              "total-results:", ok[0].json()["message"]["total-results"])
        # paced at the limit: 6 requests 0.34 s apart all pass; faults still work
        time.sleep(1.0)
        paced = []
        for i in range(6):
            paced.append(requests.get(f"{srv.base_url}/works", params={"query": "topic"}).status_code)
            time.sleep(0.34 - srv.latency)
        srv.fail("malformed")
        srv.fail("empty")
        bad = [requests.get(f"{srv.base_url}/works/10.1234/x1") for _ in range(2)]
        srv.timeout_sleep = 1.0
        srv.fail("timeout")
        try:
            requests.get(f"{srv.base_url}/works/10.1234/x2", timeout=0.5)
            timed_out = False
        except requests.Timeout:
            timed_out = True
        time.sleep(1.0)  # the timed-out answer is written to a closed connection: no traceback
        print("paced:", paced, "malformed/empty:", [(r.status_code, r.text[:20]) for r in bad],
              "timeout seen:", timed_out)
