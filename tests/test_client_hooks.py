"""The library internals citetune's two adapters reach into are still there and still used: an
upgrade that removes one fails here, naming the library and its version, before a run would."""

from __future__ import annotations

import importlib
import inspect
import tomllib
from pathlib import Path
from types import SimpleNamespace

import arxiv
import habanero
import httpx2
import pytest
import requests
import urllib3
from packaging.requirements import Requirement

from citetune import arxiv_client
from citetune.library_hooks import HookMissing
from citetune.matching import habanero_transport
from citetune.matching.crossref import CrossrefBackend

FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/"
      xmlns:arxiv="http://arxiv.org/schemas/atom">
  <opensearch:totalResults>1</opensearch:totalResults>
  <opensearch:startIndex>0</opensearch:startIndex>
  <opensearch:itemsPerPage>1</opensearch:itemsPerPage>
  <entry>
    <id>http://arxiv.org/abs/2106.09685v2</id>
    <updated>2021-10-16T18:40:34Z</updated><published>2021-06-17T17:37:18Z</published>
    <title>LoRA</title><summary>An abstract.</summary><author><name>Edward J. Hu</name></author>
    <link title="pdf" href="http://arxiv.org/pdf/2106.09685v2" rel="related" type="application/pdf"/>
    <arxiv:primary_category term="cs.CL"/><category term="cs.CL"/>
  </entry>
</feed>"""


class CannedSession(arxiv_client.PoliteSession):
    """Answers every request with FEED, and remembers the URLs asked."""

    def __init__(self):
        super().__init__("citetune/test")
        self.urls: list[str] = []

    def request(self, method, url, **kwargs):
        self.urls.append(url)
        resp = requests.Response()
        resp.status_code, resp._content, resp.url = 200, FEED, url
        self.last_response = resp
        return resp


def polite_client(session) -> arxiv_client.PoliteClient:
    return arxiv_client.PoliteClient(session, "http://api.test/query", delay_seconds=0, page_size=10, retries=0,
                                     backoff=0)


def test_arxiv_still_fetches_its_pages_through_the_hooks_the_polite_client_takes_over():
    arxiv_client.check_hooks()  # raises HookMissing naming the arxiv version
    session = CannedSession()
    client = polite_client(session)
    results = list(client.results(arxiv.Search(query="lora", max_results=1)))
    used = f"arxiv {arxiv.__version__}: "
    assert session.urls and session.urls[0].startswith("http://api.test/query?"), \
        used + "pages no longer go to Client.query_url_format through Client._session"
    assert client.pages == 1, used + "Client.results no longer fetches pages through Client._parse_feed"
    assert [r.get_short_id() for r in results] == ["2106.09685v2"], used + "the feed is no longer parsed as before"


def test_a_missing_arxiv_hook_stops_the_client_with_the_version(monkeypatch):
    monkeypatch.delattr(arxiv.Client, "_parse_feed")
    with pytest.raises(HookMissing, match=rf"arxiv {arxiv.__version__}: arxiv.Client._parse_feed is gone"):
        polite_client(CannedSession())


def test_results_that_bypass_parse_feed_stop_the_client(monkeypatch):
    def results(self, search, offset=0):  # an arxiv that fetches its pages some other way
        yield object()

    monkeypatch.setattr(arxiv.Client, "results", results)
    with pytest.raises(HookMissing, match="no longer fetches its pages through _parse_feed"):
        list(polite_client(CannedSession()).results(arxiv.Search(query="lora")))


@pytest.fixture
def restore_habanero(monkeypatch):
    """Whatever install() replaces in habanero's modules is put back after the test."""
    for name in habanero_transport.MODULES:
        module = importlib.import_module(name)
        monkeypatch.setattr(module, "httpx2", module.httpx2)


def test_habanero_still_sends_every_request_through_the_replaced_httpx2(restore_habanero, monkeypatch):
    monkeypatch.setenv(habanero_transport.PLUS_TOKEN_ENV, "token")
    sent: list[httpx2.Request] = []

    def crossref(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        return httpx2.Response(200, json={"status": "ok", "message": {"DOI": "10.1000/x"}})

    seen = []
    habanero_transport.install(seen.append, client=httpx2.Client(transport=httpx2.MockTransport(crossref)))
    client = habanero.Crossref(base_url="http://crossref.test", mailto="t@example.org")
    answer = habanero_transport.sent_through(lambda: client.works(ids="10.1000/x"))
    used = f"habanero {habanero.__version__}: "
    assert len(sent) == 1 and len(seen) == 1, used + "requests no longer go through the module attribute httpx2"
    assert sent[0].headers["Crossref-Plus-API-Token"] == "Bearer token", used + "the token header is not sent"
    assert str(sent[0].url).startswith("http://crossref.test/works/10.1000"), used + "the works route moved"
    assert answer["message"]["DOI"] == "10.1000/x", used + "the answer is no longer the parsed JSON"


def test_a_missing_habanero_hook_stops_the_backend_with_the_version(restore_habanero, monkeypatch):
    habanero_transport.check_hooks()
    monkeypatch.delattr(importlib.import_module("habanero.request_class"), "httpx2")
    with pytest.raises(HookMissing, match=rf"habanero {habanero.__version__}: habanero.request_class no longer"):
        habanero_transport.install(lambda response: None)


def test_an_answer_that_bypassed_the_transport_is_an_error():
    with pytest.raises(HookMissing, match="without passing through the replaced httpx2.get"):
        habanero_transport.sent_through(lambda: {"message": {}})


def test_the_backend_stops_when_habanero_sends_around_the_transport(restore_habanero, monkeypatch, tmp_path):
    backend = CrossrefBackend("http://crossref.test", None, 5, tmp_path / "c.sqlite", backoff_seconds=0)
    answer = httpx2.Response(200, json={"status": "ok", "message": {"items": [], "total-results": 0}})
    direct = httpx2.Client(transport=httpx2.MockTransport(lambda request: answer))
    for name in habanero_transport.MODULES:  # a habanero that no longer calls the attribute it was given
        monkeypatch.setattr(importlib.import_module(name), "httpx2", SimpleNamespace(**{**vars(httpx2), "get": direct.get}))
    with pytest.raises(HookMissing, match=rf"habanero {habanero.__version__}: a request answered without"):
        backend.search("Hochreiter Long short-term memory", 2)


def test_the_urllib3_whose_reads_arxiv_client_uses_is_a_declared_dependency():
    """pieces() reads with HTTPResponse.read1(decode_content=...), which urllib3 2.2.0 added; requests
    alone would accept a urllib3 without it."""
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    declared = {r.name: r.specifier for r in map(Requirement, pyproject["project"]["dependencies"])}
    assert "urllib3" in declared and "2.1.0" not in declared["urllib3"]
    assert urllib3.__version__ in declared["urllib3"]
    assert "decode_content" in inspect.signature(urllib3.HTTPResponse.read1).parameters
