"""Where the server may send requests a tenant configured (server-side request forgery guard).

A tenant's URL must not reach the platform itself or the cloud's metadata service: loopback,
link-local (169.254.0.0/16, fe80::/10), unspecified, multicast and reserved addresses are refused.
Private networks are allowed unless ``allow_private`` is False: a self-hosted model server
(vLLM, Ollama) usually lives on one.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeURLError(ValueError):
    pass


# Cloud metadata services outside link-local space, refused even where private networks are allowed:
# Alibaba Cloud's (in shared address space) and AWS's IPv6 one (unique-local).
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("100.100.100.200"), ipaddress.ip_address("fd00:ec2::254")})


def check_url(url: str, *, allow_private: bool = True, allow_loopback: bool = False) -> None:
    """Raise UnsafeURLError when ``url`` is not http(s) or any address its host resolves to is refused."""
    resolve_checked(url, allow_private=allow_private, allow_loopback=allow_loopback)


def resolve_checked(
    url: str, *, allow_private: bool = True, allow_loopback: bool = False
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
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
    try:
        infos = socket.getaddrinfo(parts.hostname, port or (443 if parts.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError, ValueError):
        raise UnsafeURLError(f"{parts.hostname} does not resolve.") from None
    addresses = []
    for info in infos:
        addresses.append(
            check_address(str(info[4][0]), parts.hostname, allow_private=allow_private, allow_loopback=allow_loopback)
        )
    return list(dict.fromkeys(addresses))


def check_address(
    address_text: str, host: str, *, allow_private: bool = True, allow_loopback: bool = False
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address ``host`` resolved to, or UnsafeURLError when it is one the platform does not call."""
    address = ipaddress.ip_address(address_text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    if address in METADATA_ADDRESSES:
        raise UnsafeURLError(f"{host} resolves to {address}, a cloud metadata service.")
    if address.is_loopback and allow_loopback:
        return address
    if address.is_loopback or address.is_link_local or address.is_unspecified or address.is_multicast:
        raise UnsafeURLError(f"{host} resolves to {address}, which this platform does not call.")
    if address.is_reserved or (not allow_private and (address.is_private or not address.is_global)):
        # not global: also shared address space (100.64.0.0/10, carrier-grade NAT and some clouds' metadata)
        raise UnsafeURLError(f"{host} resolves to {address}, a private address.")
    return address
