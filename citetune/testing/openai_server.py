"""A loopback HTTP server that speaks enough of the OpenAI chat API for tests.

POST /v1/chat/completions answers a chat.completion whose message content is the next scripted
reply (`script(...)`), else what `reply(messages)` returns (by default a fixed score in JSON).
Faults are queued with `fail(status, times, retry_after, after)` and answered, in order, before any
reply (or once `after` requests have had theirs), with an OpenAI-style error body; 429s carry Retry-After when one is given. `delay` (seconds) holds
every answer back, as a slow model does. `requests` counts every POST (faults included); `bodies`
keeps each request's JSON, `keys` its bearer token and `arrivals` its time (time.monotonic());
`max_in_flight` is the most requests the server held at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from citetune.testing.loopback import LoopbackServer, QuietHandler

DEFAULT_REPLY = '{"score": 3, "reason": "scripted"}'


@dataclass
class Fault:
    status: int
    times: int = 1
    retry_after: str | None = None
    after: int = 0  # replies answered before the fault starts


class OpenAIServer(LoopbackServer):
    """Run with `with OpenAIServer() as srv:`; srv.base_url is the value for the judge's base_url."""

    def __init__(self, reply: Callable[[list[dict]], str] | None = None):
        self.reply = reply or (lambda messages: DEFAULT_REPLY)
        self.scripted: list[str] = []
        self.faults: list[Fault] = []
        self.requests = 0
        self.bodies: list[dict] = []
        self.keys: list[str] = []
        self.arrivals: list[float] = []
        self.delay = 0.0
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        self.base_url = self._serve(self._handler()) + "/v1"

    def script(self, *contents: str) -> None:
        """The next replies' message contents, one request each, before `reply` is asked again."""
        with self._lock:
            self.scripted.extend(contents)

    def fail(self, status: int, times: int = 1, retry_after: str | None = None, after: int = 0) -> None:
        """Answer `times` requests with `status`, once `after` more requests have had their reply."""
        with self._lock:
            self.faults.append(Fault(status, times, retry_after, after))

    def _next(self, messages: list[dict]) -> Fault | str:
        """Under the lock: the fault or the content that answers this request."""
        if self.faults and self.faults[0].after > 0:
            self.faults[0].after -= 1
        elif self.faults:
            fault = self.faults[0]
            fault.times -= 1
            if fault.times <= 0:
                self.faults.pop(0)
            return fault
        if self.scripted:
            return self.scripted.pop(0)
        return self.reply(messages)

    def _handler(self):
        server = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._error(404, f"Unknown path {self.path}", "invalid_request_error")
                with server._lock:
                    server.requests += 1
                    server.arrivals.append(time.monotonic())
                    server.bodies.append(body)
                    server.keys.append(self.headers.get("Authorization", "").removeprefix("Bearer "))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    answer = server._next(body.get("messages", []))
                    delay = server.delay
                try:
                    time.sleep(delay)
                    self._answer(body, answer)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self, body: dict, answer: Fault | str) -> None:
                if isinstance(answer, Fault):
                    headers = {"Retry-After": answer.retry_after} if answer.retry_after else {}
                    kind = "rate_limit_exceeded" if answer.status == 429 else "server_error"
                    return self._error(answer.status, f"Error {answer.status}", kind, headers)
                completion = {
                    "id": f"chatcmpl-{server.requests}", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", ""),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": answer}}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                }
                return self._send(200, completion)

            def _error(self, status: int, message: str, kind: str, headers: dict | None = None) -> None:
                self._send(status, {"error": {"message": message, "type": kind, "code": kind}}, headers)

            def _send(self, status: int, obj: dict, headers: dict | None = None) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        return Handler
