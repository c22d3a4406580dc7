"""Local HTTP servers for the outbound-request guard's tests: one that records what reaches it (an
"internal service"), one that answers every request with a redirect (a tenant's hostile URL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Recorded:
    url: str
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # (method, path, headers)


@contextmanager
def http_server(status: int = 200, *, location: str = "", body: bytes = b'{"ok":true}') -> Iterator[Recorded]:
    """A server on 127.0.0.1 answering every request with ``status`` (and ``Location`` when given)."""
    state = Recorded(url="")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.requests.append((self.command, self.path, dict(self.headers)))
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer  # noqa: N815 - http.server names its handlers this way

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def redirect_to_internal(status: int, path: str = "/metrics") -> Iterator[tuple[Recorded, Recorded]]:
    """(the redirecting server, the internal service it points at ``path`` of)."""
    with (
        http_server(body=b"# HELP internal_secret 1\n") as internal,
        http_server(status, location=f"{internal.url}{path}", body=b"") as redirecting,
    ):
        yield redirecting, internal
