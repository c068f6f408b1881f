"""A loopback HTTP server that speaks enough of the Crossref REST API for tests.

GET /works?query.bibliographic=...&rows=N answers a work-list ranked by how many rare words of
the query each record's bibliographic string shares (Crossref's own relevance is similar in
spirit); `select` keeps only the named fields. GET /works/{doi} answers the work, or 404
"Resource not found." as Crossref does. Faults (a status with an optional Retry-After, a JSON
error body, or a dropped connection) are queued with `fail`, for all requests or only those
whose decoded URL contains a given text.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _bib(rec: dict) -> str:
    authors = " ".join(a.get("family", "") for a in rec.get("author", []))
    year = str(rec.get("issued", {}).get("date-parts", [[""]])[0][0])
    return " ".join([authors, *(rec.get("title") or []), *(rec.get("container-title") or []), year,
                     str(rec.get("volume") or ""), str(rec.get("page") or "")])


@dataclass
class Fault:
    status: int | str  # an HTTP status, or "drop" to close the connection without answering
    times: int | None = 1  # None: every matching request
    when: str | None = None  # only requests whose decoded URL contains this text
    retry_after: str | None = None
    json_body: bool = False


class CrossrefServer:
    """Run with `with CrossrefServer(records) as srv:`; srv.base_url is the value for match.api_url."""

    def __init__(self, records: list[dict]):
        self.records = {r["DOI"].lower(): r for r in records}
        self.bibs = {doi: _words(_bib(r)) for doi, r in self.records.items()}
        df = Counter(w for ws in self.bibs.values() for w in ws)
        self.idf = {w: math.log(1 + len(self.records) / n) for w, n in df.items()}
        self.faults: list[Fault] = []
        self.hits: Counter = Counter()  # "search" and "work" -> number of requests
        self.paths: list[str] = []
        self.user_agents: list[str] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> "CrossrefServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def fail(self, status: int | str, times: int | None = 1, when: str | None = None,
             retry_after: str | None = None, json_body: bool = False) -> None:
        with self._lock:
            self.faults.append(Fault(status, times, when, retry_after, json_body))

    def requests(self) -> int:
        return sum(self.hits.values())

    def search(self, query: str, rows: int) -> list[dict]:
        words = _words(query)
        scored = [(sum(self.idf[w] for w in words & bib), doi) for doi, bib in self.bibs.items()]
        scored = sorted((s, doi) for s, doi in scored if s > 0)[::-1]
        return [dict(self.records[doi], score=round(s, 3)) for s, doi in scored[:rows]]

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

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                target = unquote(self.path).replace("+", " ")
                with server._lock:
                    server.paths.append(target)
                    server.user_agents.append(self.headers.get("User-Agent", ""))
                    kind = "search" if url.path.rstrip("/") == "/works" else "work"
                    server.hits[kind] += 1
                    fault = server._take_fault(target)
                if fault is not None:
                    return self._fault(fault)
                if kind == "search":
                    q = {k: v[0] for k, v in parse_qs(url.query).items()}
                    query = q.get("query.bibliographic") or q.get("query") or ""
                    items = server.search(query, int(q.get("rows", 20)))
                    if q.get("select"):
                        keep = set(q["select"].split(","))
                        items = [{k: v for k, v in it.items() if k in keep} for it in items]
                    message = {"items": items, "total-results": len(items), "items-per-page": len(items),
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

            def _fault(self, fault: Fault) -> None:
                if fault.status == "drop":  # connection closed without a response
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return None
                status = int(fault.status)
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                if fault.json_body:
                    body = {"status": "error", "message-type": "exception", "message-version": "1.0.0",
                            "message": [{"type": "server-error", "message": f"Server error {status}"}]}
                    return self._send(status, json.dumps(body).encode(), "application/json", headers)
                return self._send(status, f"Error {status}".encode(), "text/plain", headers)

            def _json(self, status: int, obj: dict) -> None:
                self._send(status, json.dumps(obj).encode(), "application/json;charset=utf-8")

            def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        return Handler
