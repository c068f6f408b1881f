"""What the loopback servers share: an HTTP server on a free port of 127.0.0.1, served from a thread
for the length of a `with` block, and a quiet request handler."""

from __future__ import annotations

import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _HTTPServer(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 delays bursts of connections by a SYN retry (1 s)

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):  # a client that hung up is fine
            super().handle_error(request, client_address)


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, delayed ACKs cost 40 ms each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args) -> None:  # keep test output clean
        pass


class LoopbackServer:
    """Subclasses call `_serve(handler_class)` in __init__; `with server:` runs it."""

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> str:
        """Bind the server and return its root URL; it answers once the `with` block is entered."""
        self._httpd = _HTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
