"""What a server process loads before it takes traffic, so that no session waits for it later.

Django imports the URLconfs, and through them every view, serializer and library they name (the REST
API, drf-spectacular, django.test, unittest.mock, twilio's request validator: 100+ modules), on the
first request, and under daphne that import ran on the event loop's thread: a 26–34 ms stall of every
live session at the first widget session or phone call (more from a fresh clone, which compiles them),
found with the loop probe (core/looplag.py; docs/benchmarks.md, "Where the tail came from").
"""

from __future__ import annotations

import importlib

from django.conf import settings
from django.urls import get_resolver

# What the first request and the first database connection still imported after the URLconfs (the
# probe lists every module first imported while it runs).
FIRST_USE_IMPORTS = (
    "psycopg_pool",
    "django_tenants.routers",
    "django.contrib.sessions.serializers",
    "django.contrib.messages.storage.fallback",
)


def warm_up() -> list[str]:
    """Import every URLconf the server routes by, with what they import, build their reverse maps
    (``reverse_dict`` populates a resolver), and import what first use would. Returns the URLconfs."""
    urlconfs = [settings.ROOT_URLCONF, settings.PUBLIC_SCHEMA_URLCONF]
    for urlconf in urlconfs:
        get_resolver(urlconf).reverse_dict  # noqa: B018 - the property populates the resolver
    for module in FIRST_USE_IMPORTS:
        importlib.import_module(module)
    return urlconfs
