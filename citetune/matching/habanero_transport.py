"""habanero's requests, sent through one shared httpx2 client: the one place citetune reaches into
habanero's internals.

habanero builds Crossref's requests and reads the answers, calling `httpx2.get` on the httpx2 module
it imported, with no way to add a header or see a response's headers. Checked with habanero 2.9.2
(pyproject.toml pins habanero to >=2.9.2,<2.10): the modules `habanero.request` (works, members, ...)
and `habanero.request_class` (cursor paging) each hold the module attribute `httpx2` and call its
`get(url, params=..., headers=..., timeout=...)`. `install` replaces that attribute in both with a
Transport; it raises HookMissing when the attribute is gone, and `sent_through` raises it when a call
answered without passing through the Transport, rather than quietly losing the limits and token.
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

from citetune.library_hooks import HookMissing

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
        response = self._client.get(url, params=params, headers=headers, timeout=timeout, **kw)
        self._on_response(response)
        return response


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
