"""Where the server may send requests a tenant configured (server-side request forgery guard), and the
one HTTP client every such request goes through.

A tenant's URL must not reach the platform itself or the cloud's metadata service: loopback,
link-local (169.254.0.0/16, fe80::/10), unspecified, multicast and reserved addresses are refused, and
so is every IPv6 form that carries an IPv4 address inside it (IPv4-mapped and -compatible, 6to4,
Teredo, NAT64) unless that IPv4 address is a public one. Private networks are allowed unless
``allow_private`` is False: a self-hosted model server (vLLM, Ollama) usually lives on one.

Checking a URL when it is saved is not enough: DNS can answer differently later, the settings can
tighten, and a server can answer with a redirect. So every outbound request (provider base URLs
through the OpenAI SDK, HTTP tools, webhooks) goes through :func:`async_client` / :func:`sync_client`,
whose transport, for each connection,

* reads the policy *now* (a callable, usually one of :func:`provider_policy`, :func:`tool_policy`,
  :func:`webhook_policy`, which read the settings at call time),
* resolves the host name, refuses it if any address is refused, and connects to an address it
  checked (the name stays in the Host header, TLS's SNI and certificate check: a second DNS answer
  cannot move the connection elsewhere), and
* refuses every redirect (:class:`RedirectRefusedError`), whatever the caller asked for: the OpenAI
  SDK follows redirects on its own, and a redirect is how a public URL reaches an internal one.

Connections are kept open between requests (HTTP/1.1 keep-alive), so a client that is kept (one per
process and provider configuration, as the OpenAI providers keep theirs) pays the
TCP and TLS handshakes once, not at every turn. An idle connection stays in the pool for
:data:`KEEPALIVE_EXPIRY_S` (longer than the gap between two turns of a conversation), and a kept
connection is no loophole in the policy: before the pool hands out an idle connection, the address it
is pinned to is checked against the policy of *now* (no DNS lookup; the policy object is compared
first, so an unchanged policy costs nothing), and a connection the policy no longer allows, or older
than :data:`MAX_CONNECTION_AGE_S`, is dropped, so the request connects anew and is resolved and
checked as every new connection is.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore2
import httpx2

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeURLError(ValueError):
    pass


class RedirectRefusedError(UnsafeURLError):
    """A server answered with a redirect; the platform does not follow it."""

    def __init__(self, host: str, status_code: int, location: str) -> None:
        self.status_code, self.location = status_code, location
        super().__init__(
            f"{host} answered HTTP {status_code} with a redirect to {location}; redirects are not followed."
        )


# Cloud metadata services outside link-local space, refused even where private networks are allowed:
# Alibaba Cloud's (in shared address space) and AWS's IPv6 one (unique-local).
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("100.100.100.200"), ipaddress.ip_address("fd00:ec2::254")})

# IPv6 ranges that carry an IPv4 address: (network, where the IPv4 address is).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix: the last 32 bits
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215 local-use prefix: never a public host
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d (except :: and ::1)
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT ::ffff:0:a.b.c.d


@dataclass(frozen=True, slots=True)
class Policy:
    """Which addresses one kind of outbound request may reach. ``trusted``: an operator's own URL
    (the platform's OpenAI base URL), reached wherever it is, still without following redirects."""

    allow_private: bool = True
    allow_loopback: bool = False
    trusted: bool = False


TRUSTED = Policy(trusted=True)
PolicySource = Policy | Callable[[], Policy]


@functools.cache
def _policy(allow_private: bool, allow_loopback: bool) -> Policy:
    """One Policy object per pair of settings: a kept connection's check compares by identity first."""
    return Policy(allow_private, allow_loopback)


def provider_policy() -> Policy:
    """Tenants' OpenAI-compatible base URLs, as the settings say now."""
    from django.conf import settings

    return _policy(settings.AURA_PROVIDER_URLS_ALLOW_PRIVATE, settings.AURA_PROVIDER_URLS_ALLOW_LOOPBACK)


def tool_policy() -> Policy:
    """Tenants' HTTP tools, as the settings say now."""
    from django.conf import settings

    return _policy(settings.AURA_TOOL_URLS_ALLOW_PRIVATE, settings.AURA_TOOL_URLS_ALLOW_LOOPBACK)


def webhook_policy() -> Policy:
    """Tenants' webhook endpoints, as the settings say now."""
    from django.conf import settings

    return _policy(settings.AURA_WEBHOOK_URLS_ALLOW_PRIVATE, settings.AURA_WEBHOOK_URLS_ALLOW_LOOPBACK)


def _current(policy: PolicySource) -> Policy:
    return policy if isinstance(policy, Policy) else policy()


# --- checks ------------------------------------------------------------------------------------------


def check_url(
    url: str, *, allow_private: bool = True, allow_loopback: bool = False, policy: PolicySource | None = None
) -> None:
    """Raise UnsafeURLError when ``url`` is not http(s) or any address its host resolves to is refused.
    With ``policy`` (``provider_policy``, ``tool_policy``, ``webhook_policy``), the same rule a connection
    of that kind is held to, read now: a save is checked as the call will be."""
    if policy is not None:
        current = policy() if callable(policy) else policy
        allow_private, allow_loopback = current.allow_private, current.allow_loopback
    resolve_checked(url, allow_private=allow_private, allow_loopback=allow_loopback)


def resolve_checked(url: str, *, allow_private: bool = True, allow_loopback: bool = False) -> list[Address]:
    """The addresses ``url``'s host resolves to, every one of them allowed; else UnsafeURLError.

    Connect to one of these addresses (not to the host name again): a second lookup could answer
    differently (DNS rebinding).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURLError("Use an http:// or https:// address with a host name.")
    try:
        port = parts.port
    except ValueError:
        raise UnsafeURLError("The port is not valid.") from None
    policy = Policy(allow_private, allow_loopback)
    return resolve_host(parts.hostname, port or (443 if parts.scheme == "https" else 80), policy)


def resolve_host(host: str, port: int, policy: Policy) -> list[Address]:
    """The addresses ``host`` resolves to, each allowed by ``policy``; UnsafeURLError if any is not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):
        raise UnsafeURLError(f"{host} does not resolve.") from None
    if policy.trusted:
        return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos))
    addresses = [
        check_address(str(info[4][0]), host, allow_private=policy.allow_private, allow_loopback=policy.allow_loopback)
        for info in infos
    ]
    if not addresses:
        raise UnsafeURLError(f"{host} does not resolve.")
    return list(dict.fromkeys(addresses))


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: mapped, compatible, translated, 6to4, Teredo, NAT64."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)  # the Teredo server and the client's (de-obfuscated) address
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _NAT64 or address in _IPV4_TRANSLATED:
        found.append(low32)
    if address in _IPV4_COMPATIBLE and int(address) > 1:  # not :: nor ::1
        found.append(low32)
    return found


def check_address(address_text: str, host: str, *, allow_private: bool = True, allow_loopback: bool = False) -> Address:
    """The address ``host`` resolved to, or UnsafeURLError when it is one the platform does not call."""
    address = ipaddress.ip_address(address_text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL:
            raise UnsafeURLError(f"{host} resolves to {address}, a local NAT64 address.")
        for inner in embedded_ipv4(address):
            # An IPv6 spelling of an IPv4 address is refused unless that address is a public one:
            # nobody needs ::ffff:127.0.0.1 or 2002:a00:1:: to reach a server they could name plainly.
            if not inner.is_global or inner in METADATA_ADDRESSES:
                raise UnsafeURLError(f"{host} resolves to {address}, which carries {inner} inside it.")
        if address in _NAT64:  # DNS64 on an IPv6-only network: a public IPv4 host, reached through NAT64
            return address
    if address in METADATA_ADDRESSES:
        raise UnsafeURLError(f"{host} resolves to {address}, a cloud metadata service.")
    if address.is_loopback and allow_loopback:
        return address
    if address.is_loopback or address.is_link_local or address.is_unspecified or address.is_multicast:
        raise UnsafeURLError(f"{host} resolves to {address}, which this platform does not call.")
    site_local = isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    if address.is_reserved or (not allow_private and (address.is_private or not address.is_global or site_local)):
        # not global: also shared address space (100.64.0.0/10, carrier-grade NAT and some clouds' metadata);
        # site-local fec0::/10 (deprecated, still routed on old networks) is a private network too
        raise UnsafeURLError(f"{host} resolves to {address}, a private address.")
    return address


# --- the outbound client -------------------------------------------------------------------------------

MAX_ADDRESSES = 3  # addresses of one host name tried per connection
KEEPALIVE_EXPIRY_S = 60.0  # an idle connection is kept this long: longer than a turn's gap, shorter than nginx's 75 s
MAX_CONNECTION_AGE_S = 300.0  # then a new connection, so the host name is resolved and checked again
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ssl_context: ssl.SSLContext | None = None
_ssl_lock = threading.Lock()


def _shared_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process (loading the CA store costs milliseconds)."""
    global _ssl_context
    with _ssl_lock:
        if _ssl_context is None:
            _ssl_context = httpcore2.default_ssl_context()
        return _ssl_context


class _Pin:
    """Where one connection went, and whether it may still be reused: the address it was pinned to must
    still be allowed by the policy, and the connection younger than :data:`MAX_CONNECTION_AGE_S`."""

    __slots__ = ("_address", "_allowed_under", "_host", "_opened_at", "_policy")

    def __init__(self, host: str, address: Address, policy: PolicySource, allowed_under: Policy) -> None:
        self._host, self._address, self._policy = host, address, policy
        self._allowed_under = allowed_under
        self._opened_at = time.monotonic()

    def retired(self) -> bool:
        if time.monotonic() - self._opened_at > MAX_CONNECTION_AGE_S:
            return True
        policy = _current(self._policy)
        if policy is self._allowed_under or policy == self._allowed_under:
            return False
        if not policy.trusted:
            try:
                check_address(
                    str(self._address),
                    self._host,
                    allow_private=policy.allow_private,
                    allow_loopback=policy.allow_loopback,
                )
            except UnsafeURLError:
                return True
        self._allowed_under = policy
        return False


class _PinnedAsyncStream(httpcore2.AsyncNetworkStream):
    """A connection to a checked address. When the pool asks whether an idle connection is readable (the
    sign of a connection the server closed), a retired one says yes: the pool drops it, never reuses it."""

    __slots__ = ("_inner", "_pin")

    def __init__(self, inner: httpcore2.AsyncNetworkStream, pin: _Pin) -> None:
        self._inner, self._pin = inner, pin

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore2.AsyncNetworkStream:
        return _PinnedAsyncStream(await self._inner.start_tls(ssl_context, server_hostname, timeout), self._pin)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._pin.retired():
            return True
        return self._inner.get_extra_info(info)


class _PinnedStream(httpcore2.NetworkStream):
    """The synchronous twin of :class:`_PinnedAsyncStream`."""

    __slots__ = ("_inner", "_pin")

    def __init__(self, inner: httpcore2.NetworkStream, pin: _Pin) -> None:
        self._inner, self._pin = inner, pin

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.NetworkStream:
        return _PinnedStream(self._inner.start_tls(ssl_context, server_hostname, timeout), self._pin)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._pin.retired():
            return True
        return self._inner.get_extra_info(info)


class _GuardedAsyncBackend(httpcore2.AsyncNetworkBackend):
    def __init__(self, policy: PolicySource) -> None:
        self._policy = policy
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore passes the connect timeout
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        policy = _current(self._policy)
        addresses = await anyio.to_thread.run_sync(resolve_host, host, port, policy)
        failure: Exception = httpcore2.ConnectError(f"{host} has no address")
        for address in addresses[:MAX_ADDRESSES]:
            try:
                stream = await self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
                return _PinnedAsyncStream(stream, _Pin(host, address, self._policy, policy))
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore2.AsyncNetworkStream:
        raise UnsafeURLError("Outbound requests do not use Unix sockets.")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedSyncBackend(httpcore2.NetworkBackend):
    def __init__(self, policy: PolicySource) -> None:
        self._policy = policy
        self._inner = httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        policy = _current(self._policy)
        addresses = resolve_host(host, port, policy)
        failure: Exception = httpcore2.ConnectError(f"{host} has no address")
        for address in addresses[:MAX_ADDRESSES]:
            try:
                stream = self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
                return _PinnedStream(stream, _Pin(host, address, self._policy, policy))
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                failure = exc
        raise failure

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore2.NetworkStream:
        raise UnsafeURLError("Outbound requests do not use Unix sockets.")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _refuse_redirect(request: httpx2.Request, response: httpx2.Response) -> None:
    if response.status_code in _REDIRECT_STATUSES and "location" in response.headers:
        raise RedirectRefusedError(request.url.host, response.status_code, response.headers["location"])


class GuardedAsyncTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport over a connection pool whose every connection is resolved, checked and pinned."""

    def __init__(self, policy: PolicySource, *, limits: httpx2.Limits | None = None) -> None:
        # Not super().__init__(): that would build a pool (and a TLS context) only to be replaced.
        limits = limits or httpx2.Limits(
            max_connections=100, max_keepalive_connections=20, keepalive_expiry=KEEPALIVE_EXPIRY_S
        )
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=_shared_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedAsyncBackend(policy),
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await super().handle_async_request(request)
        try:
            _refuse_redirect(request, response)
        except RedirectRefusedError:
            await response.aclose()
            raise
        return response


class GuardedTransport(httpx2.HTTPTransport):
    """The synchronous twin of :class:`GuardedAsyncTransport` (webhook deliveries run in Celery)."""

    def __init__(self, policy: PolicySource, *, limits: httpx2.Limits | None = None) -> None:
        limits = limits or httpx2.Limits(
            max_connections=20, max_keepalive_connections=5, keepalive_expiry=KEEPALIVE_EXPIRY_S
        )
        self._pool = httpcore2.ConnectionPool(
            ssl_context=_shared_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedSyncBackend(policy),
        )

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = super().handle_request(request)
        try:
            _refuse_redirect(request, response)
        except RedirectRefusedError:
            response.close()
            raise
        return response


def async_client(
    policy: PolicySource, *, timeout: httpx2.Timeout | float = 10.0, limits: httpx2.Limits | None = None
) -> httpx2.AsyncClient:
    """The outbound HTTP client (async): guarded per connection, never following a redirect, and
    ignoring proxy variables in the environment (a proxy would connect to the name, unchecked)."""
    return httpx2.AsyncClient(
        transport=GuardedAsyncTransport(policy, limits=limits), timeout=timeout, follow_redirects=False, trust_env=False
    )


def sync_client(
    policy: PolicySource, *, timeout: httpx2.Timeout | float = 10.0, limits: httpx2.Limits | None = None
) -> httpx2.Client:
    """The outbound HTTP client (blocking), guarded like :func:`async_client`."""
    return httpx2.Client(
        transport=GuardedTransport(policy, limits=limits), timeout=timeout, follow_redirects=False, trust_env=False
    )


def refusal(exc: BaseException) -> UnsafeURLError | None:
    """The UnsafeURLError behind ``exc`` (an SDK or HTTP error raised from one), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, UnsafeURLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
