"""A loopback server that answers every request the same scripted way, for the failures a client must
survive on its own: a status with headers and a body (a 429 whose body is JSON of any shape), or an
answer trickled `trickle_seconds` per byte after its headers (a slow loris), or headers that never
end, trickled `header_trickle_seconds` per byte after the status line. `paths` records the
path (and query) of every request, as sent, so a test can say what was never asked.
"""

from __future__ import annotations

import itertools
import threading

from citetune.testing.loopback import LoopbackServer, QuietHandler


class ScriptedServer(LoopbackServer):
    """Run with `with ScriptedServer(...) as srv:`; srv.base_url is its root URL."""

    def __init__(self, status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None,
                 content_type: str = "application/json", trickle_seconds: float = 0.0,
                 header_trickle_seconds: float = 0.0):
        self.status, self.body, self.headers = status, body, dict(headers or {})
        self.content_type, self.trickle_seconds = content_type, trickle_seconds
        self.header_trickle_seconds = header_trickle_seconds
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.base_url = self._serve(self._handler())

    def __exit__(self, *exc) -> None:
        self._stop.set()  # ends every trickle still going
        super().__exit__(*exc)

    def _handler(self):
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server.paths.append(self.path)
                if server.header_trickle_seconds:
                    self._endless_headers()
                    return
                self.send_response(server.status)
                self.send_header("Content-Type", server.content_type)
                self.send_header("Content-Length", str(len(server.body)))
                for name, value in server.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if not server.trickle_seconds:
                    self.wfile.write(server.body)
                    return
                try:
                    for i in range(len(server.body)):
                        if server._stop.wait(server.trickle_seconds):
                            break
                        self.wfile.write(server.body[i:i + 1])
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):  # the client gave up: what is tested
                    pass
                self.close_connection = True

            def _endless_headers(self) -> None:
                self.close_connection = True
                self.wfile.write(f"HTTP/1.1 {server.status} Slow\r\n".encode())
                self.wfile.flush()
                line = b"X-Slow: a\r\n"
                try:
                    for i in itertools.count():
                        if server._stop.wait(server.header_trickle_seconds):
                            return
                        self.wfile.write(line[i % len(line):][:1])
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler
