"""One HTTP POST to a tenant's URL, to an address the SSRF guard checked, following no redirect.

The host name is resolved once (core.netguard.resolve_checked refuses loopback, link-local, metadata
and, unless allowed, private addresses) and the connection goes to that address, with the host name
only in the Host header and TLS's SNI and certificate check: a second DNS answer cannot redirect it.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.netguard import UnsafeURLError, resolve_checked

RESPONSE_BODY_LIMIT = 2048


@dataclass(frozen=True, slots=True)
class PostResult:
    status_code: int | None
    response_body: str
    error: str
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


MAX_ADDRESSES = 3  # addresses of one host name tried per attempt


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout_s: float,
    allow_private: bool,
    allow_loopback: bool,
) -> PostResult:
    started = time.monotonic()

    def done(status: int | None = None, response: bytes = b"", error: str = "") -> PostResult:
        text = response[:RESPONSE_BODY_LIMIT].decode("utf-8", errors="replace").replace("\x00", "")
        return PostResult(status, text, error[:300], int((time.monotonic() - started) * 1000))

    try:
        addresses = resolve_checked(url, allow_private=allow_private, allow_loopback=allow_loopback)
    except UnsafeURLError as exc:
        return done(error=f"refused: {exc}")
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection_class = _PinnedHTTPSConnection if https else _PinnedHTTPConnection
    last_error = "no address"
    deadline = started + timeout_s  # for the whole attempt, however many addresses the name has
    for address in addresses[:MAX_ADDRESSES]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            last_error = f"no answer within {timeout_s:g} s"
            break
        connection = connection_class(parts.hostname or "", port, _socket_host(address), remaining)
        try:
            connection.request("POST", target, body=body, headers=headers)
            response = connection.getresponse()
            return done(response.status, response.read(RESPONSE_BODY_LIMIT))
        except (OSError, http.client.HTTPException) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()
    return done(error=last_error)


def _socket_host(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return str(address)
