"""A loopback HTTP server that speaks enough of the arXiv API for tests and benchmarks.

GET /api/query answers an Atom feed laid out like export.arxiv.org's (opensearch paging
header, arxiv:primary_category, arxiv:doi, arxiv:journal_ref, arxiv:comment, links with
title="pdf"), paged by start/max_results, restricted to id_list when one is given.
GET /pdf/<id>v<n> serves each paper's PDF, `pdf_seconds` slowly.
Faults are queued per PDF path or for the API, one consumed per request: a status code (with a
Retry-After of `retry_after`, "0" unless set, for 429/503), "html", "empty" (no body; for the API an empty page), "drop"
(the connection closed without a response), "reset" (half the PDF, then the connection closed
before Content-Length is reached) or "truncated" (a whole response whose PDF lacks its end).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlparse
from xml.sax.saxutils import escape, quoteattr

from citetune.testing.loopback import LoopbackServer, QuietHandler

ARXIV_NS = "http://arxiv.org/schemas/atom"
OPENSEARCH_NS = "http://a9.com/-/spec/opensearch/1.1/"
HTML_PAGE = b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>captcha</body></html>"


@dataclass
class Paper:
    """One arXiv entry as the API describes it."""

    id: str  # with version, e.g. 2106.09685v2 or hep-th/9901001v1
    title: str
    authors: list[str]
    summary: str = "An abstract that spans\n  two lines, as arXiv prints it."
    categories: list[str] = field(default_factory=lambda: ["cs.CL"])
    published: str = "2021-06-17T17:37:18Z"
    updated: str = "2021-10-16T18:40:34Z"
    doi: str | None = None
    journal_ref: str | None = None
    comment: str | None = None
    affiliations: dict[str, str] = field(default_factory=dict)

    def pdf_bytes(self) -> bytes:
        # A small well-formed PDF whose bytes differ per paper (so each sha256 differs).
        text = f"(arXiv {self.id}) Tj".encode()
        stream = b"BT /F1 12 Tf 72 720 Td " + text + b" ET"
        objs = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
        out, offsets = bytearray(b"%PDF-1.4\n"), []
        for n, body in enumerate(objs, 1):
            offsets.append(len(out))
            out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
        out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
        out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
        return bytes(out)


class ArxivServer(LoopbackServer):
    """Run with `with ArxivServer(papers) as srv:`; srv.api_url is the value for download.api_url."""

    def __init__(self, papers: list[Paper] | None = None):
        self.papers = list(papers or [])
        self.api_faults: list = []  # consumed one per API request
        self.pdf_faults: dict[str, list] = {}  # "<id>v<n>" -> faults consumed one per request
        self.hits: Counter = Counter()  # "api" and "pdf/<id>v<n>" -> number of requests
        self.api_requests: list[dict[str, str]] = []
        self.user_agents: list[str] = []
        self.pdf_seconds = 0.0  # how long each PDF takes to send
        self.retry_after = "0"  # the Retry-After of a 429 or 503 fault
        self._lock = threading.Lock()
        self.base_url = self._serve(self._handler())
        self.api_url = self.base_url + "/api/query"

    def pdf_hits(self) -> int:
        return sum(n for k, n in self.hits.items() if k.startswith("pdf/"))

    def matching(self, query: dict[str, str]) -> list[Paper]:
        ids = [i for i in query.get("id_list", "").split(",") if i]
        if not ids:
            return self.papers
        return [p for p in self.papers if p.id in ids or p.id.rsplit("v", 1)[0] in ids]

    def feed(self, query: dict[str, str], empty: bool = False) -> bytes:
        start, size = int(query.get("start", 0)), int(query.get("max_results", 10))
        papers = self.matching(query)
        page = [] if empty else papers[start : start + size]
        self_link = escape(f"{self.api_url}?{urlencode(query)}")
        entries = "".join(self._entry(p) for p in page)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<feed xmlns="http://www.w3.org/2005/Atom" xmlns:opensearch="{OPENSEARCH_NS}" '
            f'xmlns:arxiv="{ARXIV_NS}">\n'
            f'  <id>https://arxiv.org/api/Zq3y0vFv3dQmyR0hHBVt7Jx2Ia4</id>\n'
            f'  <title>arXiv Query: {escape(query.get("search_query", ""))}</title>\n'
            f'  <updated>2024-05-01T00:00:00Z</updated>\n'
            f'  <link href="{self_link}" type="application/atom+xml"/>\n'
            f"  <opensearch:itemsPerPage>{size}</opensearch:itemsPerPage>\n"
            f"  <opensearch:totalResults>{len(papers)}</opensearch:totalResults>\n"
            f"  <opensearch:startIndex>{start}</opensearch:startIndex>\n"
            f"{entries}</feed>\n"
        ).encode()

    def _entry(self, p: Paper) -> str:
        authors = "".join(
            f"    <author>\n      <name>{escape(a)}</name>\n"
            + (f"      <arxiv:affiliation>{escape(p.affiliations[a])}</arxiv:affiliation>\n" if a in p.affiliations else "")
            + "    </author>\n"
            for a in p.authors
        )
        optional = ""
        if p.doi:
            optional += f"    <arxiv:doi>{escape(p.doi)}</arxiv:doi>\n"
            optional += f'    <link href="https://doi.org/{escape(p.doi)}" rel="related" title="doi"/>\n'
        if p.journal_ref:
            optional += f"    <arxiv:journal_ref>{escape(p.journal_ref)}</arxiv:journal_ref>\n"
        if p.comment:
            optional += f"    <arxiv:comment>{escape(p.comment)}</arxiv:comment>\n"
        cats = "".join(f'    <category term="{escape(c)}" scheme="http://arxiv.org/schemas/atom"/>\n' for c in p.categories)
        return (
            "  <entry>\n"
            f"    <id>http://arxiv.org/abs/{p.id}</id>\n"
            f"    <title>{escape(p.title)}</title>\n"
            f"    <updated>{p.updated}</updated>\n"
            f'    <link href="https://arxiv.org/abs/{p.id}" rel="alternate" type="text/html"/>\n'
            f'    <link href={quoteattr(f"{self.base_url}/pdf/{p.id}")} rel="related" type="application/pdf" title="pdf"/>\n'
            f"    <summary>  {escape(p.summary)}\n</summary>\n"
            f"{cats}"
            f"    <published>{p.published}</published>\n"
            f"{optional}"
            f'    <arxiv:primary_category term="{escape(p.categories[0])}"/>\n'
            f"{authors}"
            "  </entry>\n"
        )

    def _handler(self):
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                paper = None
                with server._lock:
                    server.user_agents.append(self.headers.get("User-Agent", ""))
                    if url.path == "/api/query":
                        server.hits["api"] += 1
                        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
                        server.api_requests.append(query)
                        fault = server.api_faults.pop(0) if server.api_faults else None
                        if fault in (None, "empty"):
                            return self._send(200, server.feed(query, empty=fault == "empty"),
                                              "application/atom+xml; charset=utf-8")
                        return self._fault(fault)
                    if url.path.startswith("/pdf/"):
                        key = url.path[len("/pdf/") :]
                        server.hits["pdf/" + key] += 1
                        queue = server.pdf_faults.get(key) or []
                        paper = next((p for p in server.papers if p.id == key), None)
                        if queue:
                            return self._fault(queue.pop(0), paper)
                if url.path.startswith("/pdf/") and paper is not None:
                    if server.pdf_seconds:  # outside the lock: other requests go on meanwhile
                        time.sleep(server.pdf_seconds)
                    return self._send(200, paper.pdf_bytes(), "application/pdf")
                return self._send(404, b"<html><body>Not Found</body></html>", "text/html")

            def _fault(self, fault, paper: Paper | None = None) -> None:
                if fault == "html":
                    return self._send(200, HTML_PAGE, "text/html; charset=utf-8")
                if fault == "empty":
                    return self._send(200, b"", "application/pdf")
                if fault == "drop":  # connection closed without a response
                    return self._close()
                whole = paper.pdf_bytes() if paper is not None else b"%PDF-1.4\n" + b"x" * 400
                if fault == "reset":  # the connection dies half-way through the body
                    self.send_response(200)
                    self.send_header("Content-Type", "application/pdf")
                    self.send_header("Content-Length", str(len(whole)))
                    self.end_headers()
                    self.wfile.write(whole[: len(whole) // 2])
                    return self._close()
                if fault == "truncated":  # a complete response of an incomplete file
                    return self._send(200, whole[: len(whole) // 2], "application/pdf")
                status = int(fault)
                extra = {"Retry-After": server.retry_after} if status in (429, 503) else {}
                return self._send(status, f"error {fault}".encode(), "text/plain", extra)

            def _close(self) -> None:
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(2)

            def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        return Handler
