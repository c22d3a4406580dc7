"""One webhook POST (webhooks.http): the whole attempt is bounded by the timeout, not each phase alone."""

from __future__ import annotations

import socket
import threading
import time

from core.netguard import Policy
from webhooks import http

LOOPBACK_OK = Policy(allow_private=False, allow_loopback=True)


def _dripping_server() -> tuple[int, threading.Event]:
    """Answers 200 at once, then sends its body one byte every 0.2 s for 3 s."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        connection, _ = listener.accept()
        with connection, listener:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n")
            for _ in range(15):
                if stop.wait(0.2):
                    return
                connection.sendall(b"x")

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], stop


def test_a_slow_drip_after_a_200_is_a_timeout_not_a_success():
    port, stop = _dripping_server()
    started = time.monotonic()
    try:
        result = http.post(f"http://127.0.0.1:{port}/hook", b"{}", {}, timeout_s=0.5, policy=lambda: LOOPBACK_OK)
    finally:
        stop.set()

    assert not result.succeeded and "no answer within 0.5 s" in result.error
    assert time.monotonic() - started < 1.5  # each byte came within the per-read bound: the whole one stopped it
