"""The server loads its URLconfs (and what they import) at start-up, not on the event loop at the first request."""

from __future__ import annotations

import sys

from django.conf import settings
from django.urls import clear_url_caches, get_resolver

from aura.warm_up import FIRST_USE_IMPORTS, warm_up


def test_warm_up_populates_every_urlconf_the_server_routes_by():
    clear_url_caches()  # fresh resolvers, as in a new process
    try:
        urlconfs = warm_up()
        assert set(urlconfs) == {settings.ROOT_URLCONF, settings.PUBLIC_SCHEMA_URLCONF}
        for urlconf in urlconfs:
            resolver = get_resolver(urlconf)
            assert resolver._populated
            assert urlconf in sys.modules
        assert all(module in sys.modules for module in FIRST_USE_IMPORTS)
    finally:
        clear_url_caches()


def test_the_asgi_module_warms_up_before_freezing_the_collector():
    from pathlib import Path

    source = (Path(settings.BASE_DIR) / "aura" / "asgi.py").read_text()
    assert source.index("\nwarm_up()") < source.index("\ngc.freeze()")
