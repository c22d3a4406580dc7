"""Reads of organizations and domains, with the cached host lookup every request goes through."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import caches
from django.db import transaction
from redis.exceptions import RedisError

from tenants.models import API_KEY_PREFIX_LENGTH, ApiKey, Domain, Organization, WidgetKey

logger = logging.getLogger(__name__)
T = TypeVar("T")

_MISSING = "-"  # cached marker for an unknown host, short-lived so a new domain routes quickly
_MISSING_TTL_S = 10


def _platform_cache():  # noqa: ANN202 - django's cache type is not public
    return caches["platform"]


def _host_key(hostname: str) -> str:
    return f"tenant-host:{hostname.lower()}"


def tenant_for_host(hostname: str) -> Organization | None:
    """The organization a host name routes to, or None. Cached; invalidated when a domain or organization is saved.

    A cache outage costs a database query per request, not an error page.
    """

    def load() -> Organization | None:
        domain = Domain.objects.select_related("tenant").filter(domain=hostname.lower()).first()
        return domain.tenant if domain else None

    return platform_cached(_host_key(hostname), load)


def platform_cached(cache_key: str, load: Callable[[], T | None]) -> T | None:
    """Read-through platform cache; misses are cached briefly so a new row shows up quickly."""
    cached = _cache_call("get", cache_key)
    if cached == _MISSING:
        return None
    if cached is not None:
        return cached
    found = load()
    _cache_call(
        "set",
        cache_key,
        _MISSING if found is None else found,
        _MISSING_TTL_S if found is None else settings.AURA_TENANT_CACHE_S,
    )
    return found


def forget_cached_host(hostname: str) -> None:
    forget_platform_cached(_host_key(hostname))


def forget_platform_cached(cache_key: str) -> None:
    """Drop an entry now and again once the transaction commits: a request between the two could
    otherwise cache the row as it was before the commit."""
    _cache_call("delete", cache_key)
    transaction.on_commit(lambda: _cache_call("delete", cache_key))


def _cache_call(method: str, *args: object) -> object:
    try:
        return getattr(_platform_cache(), method)(*args)
    except RedisError as exc:
        logger.warning("platform cache unavailable (%s): %s", method, exc)
        return None


def forget_cached_hosts_of(organization: Organization) -> None:
    """Everything cached with the organization in it: its hosts, its widget and API keys, and its phone
    numbers (which carry the organization's settings, such as redaction and opening hours, to sessions,
    API calls and phone calls)."""
    from telephony.queries import forget_cached_number

    for hostname in Domain.objects.filter(tenant=organization).values_list("domain", flat=True):
        forget_cached_host(hostname)
    for key in WidgetKey.objects.filter(organization=organization).values_list("key", flat=True):
        forget_cached_widget_key(key)
    for prefix in ApiKey.objects.filter(organization=organization).values_list("prefix", flat=True):
        forget_cached_api_key(prefix)
    for number in organization.phone_numbers.values_list("number", flat=True):
        forget_cached_number(number)


def primary_domain(organization: Organization) -> str | None:
    return Domain.objects.filter(tenant=organization, is_primary=True).values_list("domain", flat=True).first()


def organization_by_slug(slug: str) -> Organization | None:
    return Organization.objects.filter(slug=slug).first()


def tenant_url(organization: Organization, path: str = "/") -> str:
    """An absolute URL on the organization's host, with the platform URL's scheme and port."""
    from tenants.actions import origin_of

    return origin_of(primary_domain(organization) or "") + path


def widget_keys_of(organization: Organization) -> list[WidgetKey]:
    return list(WidgetKey.objects.filter(organization=organization).order_by("created_at"))


def _widget_key_cache_key(key: str) -> str:
    return f"widget-key:{key}"


def widget_key(key: str) -> WidgetKey | None:
    """An active widget key with its organization, or None. Cached; dropped when the key is saved."""
    if not key.startswith("pk_") or len(key) > 64:
        return None
    return platform_cached(
        _widget_key_cache_key(key),
        lambda: WidgetKey.objects.select_related("organization").filter(key=key, is_active=True).first(),
    )


def forget_cached_widget_key(key: str) -> None:
    forget_platform_cached(_widget_key_cache_key(key))


# ------------------------------------------------------------------ API keys
def _api_key_cache_key(prefix: str) -> str:
    return f"api-key:{prefix}"


def split_api_key(raw: str) -> tuple[str, str] | None:
    """``sk_<prefix>_<secret>`` → (prefix, secret), or None when it cannot be one of ours."""
    if not raw.startswith("sk_") or len(raw) > 128:
        return None
    prefix, sep, secret = raw[3:].partition("_")
    if not sep or len(prefix) != API_KEY_PREFIX_LENGTH or not secret:
        return None
    return prefix, secret


def api_key_by_prefix(prefix: str) -> ApiKey | None:
    """The key (revoked or not) with its organization. Cached; dropped when the key is saved."""
    return platform_cached(
        _api_key_cache_key(prefix),
        lambda: ApiKey.objects.select_related("organization").filter(prefix=prefix).first(),
    )


def cached_api_key_by_prefix(prefix: str) -> ApiKey | None:
    """The key if the cache holds it; never a query (for clients that may not cost the database anything)."""
    cached = _cache_call("get", _api_key_cache_key(prefix))
    return cached if isinstance(cached, ApiKey) else None


def forget_cached_api_key(prefix: str) -> None:
    forget_platform_cached(_api_key_cache_key(prefix))


def api_keys_of(organization: Organization) -> list[ApiKey]:
    return list(ApiKey.objects.filter(organization=organization).order_by("-created_at"))
