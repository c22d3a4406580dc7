"""Review attacks on the outbound guard: address forms a hostile tenant might save as a tool, webhook or
provider URL."""

from __future__ import annotations

import pytest

from core.netguard import UnsafeURLError, check_address, check_url


@pytest.mark.parametrize("address", ["fec0::1", "fec0:0:0:1::5", "feff::1"])
def test_deprecated_ipv6_site_local_addresses_are_private(address):
    # fec0::/10 (RFC 3879 deprecated it, but old networks still route it) is not global: Python's
    # ipaddress calls it neither private nor reserved, so only an explicit check keeps it out.
    with pytest.raises(UnsafeURLError, match="private address"):
        check_address(address, "host", allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://0/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[::ffff:0:7f00:1]/",
        "http://[::127.0.0.1]/",
        "http://[0:0:0:0:0:0:0:1]/",
        "http://[fe80::1%25lo]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://foo@127.0.0.1/",
        "http://LOCALHOST./",
    ],
)
def test_loopback_and_link_local_in_every_spelling_are_refused_even_where_private_is_allowed(url):
    with pytest.raises(UnsafeURLError):
        check_url(url, allow_private=True)
