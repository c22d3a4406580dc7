"""An organization's host name and browser origin, from the platform's settings. Pure."""

from __future__ import annotations

from django.conf import settings


def domain_for_slug(slug: str) -> str:
    return f"{slug}.{settings.AURA_BASE_DOMAIN}"


def origin_of(host: str) -> str:
    """The browser origin of a platform-served host: the platform URL's scheme and port."""
    scheme, _, rest = settings.AURA_PLATFORM_URL.partition("://")
    authority = rest.split("/", 1)[0]
    port = authority.rpartition(":")[2] if ":" in authority else ""
    return f"{scheme}://{host}{':' + port if port else ''}"
