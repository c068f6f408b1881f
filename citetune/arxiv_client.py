"""The arxiv package's client, made polite: the one place citetune reaches into arxiv's internals.

arxiv.Client builds each page's URL and parses the Atom feed; citetune keeps that and takes over two
internals, checked with arxiv 4.0.2 (pyproject.toml pins arxiv to >=4.0.2,<4.1):
- `Client._parse_feed(url, first_page=..., _try_index=...)`, which `Client.results` calls for every
  page: overridden to retry with citetune's backoff (Retry-After honoured), and to count an empty
  first page that announces results as a failure;
- `Client._session`, the requests.Session pages are fetched with: replaced by a PoliteSession;
and it sets the public `Client.query_url_format` to aim at the configured API. The session bounds each
request whole (arxiv sets no timeout at all): a server that stalls or trickles its answer is cut off.
A missing hook raises HookMissing when the client is made, or when results arrive without passing
through `_parse_feed`, rather than quietly losing the manners.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator

import arxiv
import requests
import urllib3

from citetune.http_retry import (
    Deadline,
    DeadlineExceeded,
    retry_after,
    retrying,
    within,
)
from citetune.library_hooks import HookMissing

log = logging.getLogger(__name__)

CHECKED = "4.0.2"
TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError, DeadlineExceeded)
CHUNK = 1 << 16


def _missing(what: str) -> HookMissing:
    return HookMissing("arxiv", getattr(arxiv, "__version__", "?"), CHECKED, what, __name__)


def check_hooks() -> None:
    """Raise HookMissing unless arxiv.Client still has what PoliteClient takes over."""
    parse = getattr(arxiv.Client, "_parse_feed", None)
    if parse is None:
        raise _missing("arxiv.Client._parse_feed is gone")
    if not {"url", "first_page"} <= inspect.signature(parse).parameters.keys():
        raise _missing(f"arxiv.Client._parse_feed{inspect.signature(parse)} no longer takes url and first_page")
    if "{}" not in str(getattr(arxiv.Client, "query_url_format", "")):
        raise _missing("arxiv.Client.query_url_format is gone")


def pieces(response: requests.Response) -> Iterator[bytes]:
    """A streamed body as each read of the socket brings it: iter_content waits for whole chunks, so
    a body trickled a byte at a time would be seen only at its end. urllib3's failures come out as
    the requests errors iter_content raises."""
    try:
        while piece := response.raw.read1(CHUNK, decode_content=True):
            yield piece
    except urllib3.exceptions.ReadTimeoutError as e:
        raise requests.exceptions.ReadTimeout(e) from e
    except urllib3.exceptions.HTTPError as e:  # the connection cut short, a broken chunk
        raise requests.exceptions.ChunkedEncodingError(e) from e


class PoliteSession(requests.Session):
    """One connection pool for everything, citetune's User-Agent on every request (the arxiv
    package sets its own per request), the last response kept for its Retry-After, and each
    request that is not streamed read whole within `timeout` seconds (None: no limit)."""

    def __init__(self, agent: str, timeout: float | None = None):
        super().__init__()
        self.agent, self.timeout = agent, timeout
        self.headers["User-Agent"] = agent
        self.last_response: requests.Response | None = None

    def request(self, method, url, **kwargs):
        headers = {k: v for k, v in (kwargs.pop("headers", None) or {}).items() if k.lower() != "user-agent"}
        kwargs["headers"] = {**headers, "User-Agent": self.agent}
        if self.timeout is None or kwargs.get("stream"):  # a streamed body is the caller's to time
            self.last_response = super().request(method, url, **kwargs)
        else:
            self.last_response = self._within(method, url, **kwargs)
        return self.last_response

    def _within(self, method, url, **kwargs) -> requests.Response:
        deadline = Deadline(url, self.timeout)
        kwargs.setdefault("timeout", self.timeout)  # each read; the deadline bounds them together

        def whole() -> requests.Response:
            response = requests.Session.request(self, method, url, stream=True, **kwargs)
            with response:
                # As requests reads a body that is not streamed, with the clock checked between pieces.
                response._content = b"".join(deadline.chunks(pieces(response)))
            return response

        return within(deadline, whole)


class PoliteClient(arxiv.Client):
    """arxiv.Client whose every page request goes through a PoliteSession, paced by
    `delay_seconds` (the client's own pacing), retried with backoff on transient failures."""

    def __init__(self, session: PoliteSession, api_url: str, delay_seconds: float, page_size: int, retries: int,
                 backoff: float, on_page=None, max_wait: float = 600.0):
        check_hooks()
        super().__init__(page_size=page_size, delay_seconds=delay_seconds, num_retries=0)
        if not isinstance(vars(self).get("_session"), requests.Session):
            raise _missing("arxiv.Client no longer keeps its requests.Session in _session")
        self.query_url_format = api_url + ("&" if "?" in api_url else "?") + "{}"
        self._session = session
        self.retries, self.backoff, self.on_page = retries, backoff, on_page
        self.max_wait = max_wait  # a longer Retry-After is not waited out: the failure is raised
        self.pages = 0  # fetched through _parse_feed

    def results(self, search: arxiv.Search, offset: int = 0):
        for result in super().results(search, offset):
            if not self.pages:
                raise _missing("arxiv.Client.results no longer fetches its pages through _parse_feed")
            yield result

    def _parse_feed(self, url: str, first_page: bool = True, _try_index: int = 0):
        def transient(exc: BaseException) -> bool:
            if isinstance(exc, arxiv.HTTPError):
                return exc.status >= 500 or exc.status == 429
            return isinstance(exc, (arxiv.UnexpectedEmptyPageError, *TRANSIENT))

        def fetch():
            try:
                feed = super(PoliteClient, self)._parse_feed(url, first_page=first_page)
            except arxiv.HTTPError as e:
                last = self._session.last_response
                e.retry_after = retry_after(last.headers.get("Retry-After") if last is not None else None)
                raise
            if not feed.results and feed.header.total_results:
                # A first page without entries that says there are some: arXiv under load.
                raise arxiv.UnexpectedEmptyPageError(url, 0, feed)
            return feed

        feed = retrying(attempts=self.retries + 1, first_pause=self.backoff, max_wait=self.max_wait,
                        retry_on=transient, log=log, service="arXiv API", give_up_beyond=self.max_wait)(fetch)
        self.pages += 1
        if self.on_page is not None:
            self.on_page(feed)
        return feed
