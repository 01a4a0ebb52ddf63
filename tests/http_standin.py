"""A real HTTP server on 127.0.0.1 that records what is POSTed: webhook and Bot API stand-in."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 64 * 1024 * 1024


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, tuple[str | None, bytes]]:
        """A multipart/form-data body: field name -> (file name, bytes)."""
        head = f"Content-Type: {self.headers['content-type']}\r\n\r\n".encode()
        message: Message = message_from_bytes(head + self.body, policy=HTTP)
        out: dict[str, tuple[str | None, bytes]] = {}
        for part in message.iter_parts():  # type: ignore[attr-defined]
            name = part.get_param("name", header="content-disposition")
            out[str(name)] = (part.get_filename(), part.get_payload(decode=True))
        return out


class StandIn:
    """``with StandIn() as server:``; ``statuses`` answers in turn (the last one repeats)."""

    def __init__(
        self, statuses: list[int] | None = None, answer: Any = None, error_answer: Any = None
    ) -> None:
        self.statuses = list(statuses or [200])
        self.answer = {"ok": True} if answer is None else answer
        self.error_answer = {"ok": False} if error_answer is None else error_answer
        self.requests: list[Request] = []
        self.arrived = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("content-length", 0)), MAX_BODY)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                owner.requests.append(Request(self.path, headers, body))
                status = owner.statuses.pop(0) if len(owner.statuses) > 1 else owner.statuses[0]
                data = json.dumps(owner.answer if status < 300 else owner.error_answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                owner.arrived.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> StandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def __iter__(self) -> Iterator[Request]:
        return iter(list(self.requests))
