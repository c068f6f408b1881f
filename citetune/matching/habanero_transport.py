"""habanero's requests, sent through one shared httpx2 client: the one place citetune reaches into
habanero's internals.

habanero builds Crossref's requests and reads the answers, calling `httpx2.get` on the httpx2 module
it imported, with no way to add a header or see a response's headers. Checked with habanero 2.9.2
(pyproject.toml pins habanero to >=2.9.2,<2.10): the modules `habanero.request` (works, members, ...)
and `habanero.request_class` (cursor paging) each hold the module attribute `httpx2` and call its
`get(url, params=..., headers=..., timeout=...)`. `install` replaces that attribute in both with a
Transport; it raises HookMissing when the attribute is gone, and `sent_through` raises it when a call
answered without passing through the Transport, rather than quietly losing the limits and token.

The Transport also makes habanero's timeout the deadline of the whole request (httpx2's bounds each
read only), and turns an error status into a LookupFailed that says the status and the server's
message before habanero reads the body (it expects a JSON object and fails on anything else).
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable
from typing import TypeVar

import habanero
import httpx2

from citetune.http_retry import Deadline, retry_after, within
from citetune.library_hooks import HookMissing
from citetune.matching.crossref import LookupFailed

CHECKED = "2.9.2"
MODULES = ("habanero.request", "habanero.request_class")  # the modules, not the names they export
PLUS_TOKEN_ENV = "CROSSREF_PLUS_TOKEN"
T = TypeVar("T")

_state = threading.local()  # whether the current thread's call went through the Transport


def _missing(what: str) -> HookMissing:
    return HookMissing("habanero", getattr(habanero, "__version__", "?"), CHECKED, what, __name__)


class Transport:
    """What habanero sees as the httpx2 module: `get` goes through one shared client that adds the
    Crossref Plus token (when CROSSREF_PLUS_TOKEN is set; habanero keeps an api_key but does not send
    it) and reports each response; everything else is httpx2's."""

    def __init__(self, client: httpx2.Client, on_response: Callable):
        self._client, self._on_response = client, on_response

    def __getattr__(self, name):
        return getattr(httpx2, name)

    def get(self, url, params=None, headers=None, timeout=None, **kw):
        _state.used = True
        token = os.environ.get(PLUS_TOKEN_ENV)
        headers = {**(headers or {}), **({"Crossref-Plus-API-Token": f"Bearer {token}"} if token else {})}
        response = self._within(timeout, url, params=params, headers=headers, **kw) if timeout else \
            self._client.get(url, params=params, headers=headers, **kw)
        self._on_response(response)
        if response.status_code >= 400:
            raise LookupFailed(f"HTTP {response.status_code} {response.reason_phrase} from {response.url}: "
                               f"{server_message(response)}", response.status_code,
                               retry_after(response.headers.get("Retry-After")))
        return response

    def _within(self, seconds: float, url, **kw) -> httpx2.Response:
        """The whole response read within `seconds`, or DeadlineExceeded."""
        deadline = Deadline(self._client.build_request("GET", url, params=kw.get("params")).url, seconds)

        def whole() -> httpx2.Response:
            with self._client.stream("GET", url, timeout=seconds, **kw) as streamed:
                body = b"".join(deadline.chunks(streamed.iter_bytes()))
            # The body as it was read: decoded, so without the encoding and length of the bytes sent.
            headers = [(k, v) for k, v in streamed.headers.multi_items()
                       if k.lower() not in ("content-encoding", "content-length")]
            return httpx2.Response(streamed.status_code, headers=headers, content=body, request=streamed.request,
                                   extensions=streamed.extensions)

        return within(deadline, whole)


def server_message(response: httpx2.Response, limit: int = 300) -> str:
    """What an error response says: Crossref's message(s) from a JSON body of any shape, else the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:limit] or "(empty body)"
    found = body.get("message", body) if isinstance(body, dict) else body
    if isinstance(found, list):  # [{"type": ..., "message": ...}, ...]
        found = "; ".join(str(m.get("message", m)) if isinstance(m, dict) else str(m) for m in found)
    return str(found)[:limit]


def check_hooks() -> None:
    """Raise HookMissing unless each of habanero's request modules still holds an httpx2 to replace."""
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            raise _missing(f"the module {name} is gone") from None
        if not callable(getattr(getattr(module, "httpx2", None), "get", None)):
            raise _missing(f"{name} no longer sends its requests through its module attribute httpx2")


def install(on_response: Callable, client: httpx2.Client | None = None) -> Transport:
    """Route every habanero request through one client (a pooled one unless given); on_response
    sees each response."""
    check_hooks()
    client = client or httpx2.Client(limits=httpx2.Limits(max_connections=8, max_keepalive_connections=8))
    transport = Transport(client, on_response)
    for name in MODULES:
        importlib.import_module(name).httpx2 = transport
    # The stage logs at INFO; one line per HTTP request from httpx2 would drown the progress bar.
    for name in ("httpx2", "httpcore2"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return transport


def sent_through(call: Callable[[], T]) -> T:
    """call()'s answer, once it is sure the request went through the installed Transport."""
    _state.used = False
    answer = call()
    if not _state.used:
        raise _missing("a request answered without passing through the replaced httpx2.get")
    return answer
