"""Reads of organizations and domains, with the cached host lookup every request goes through."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import caches
from redis.exceptions import RedisError

from tenants.models import Domain, Organization, WidgetKey

logger = logging.getLogger(__name__)

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
    key = _host_key(hostname)
    cached = _cache_call("get", key)
    if cached == _MISSING:
        return None
    if cached is not None:
        return cached
    domain = Domain.objects.select_related("tenant").filter(domain=hostname.lower()).first()
    if domain is None:
        _cache_call("set", key, _MISSING, _MISSING_TTL_S)
        return None
    _cache_call("set", key, domain.tenant, settings.AURA_TENANT_CACHE_S)
    return domain.tenant


def forget_cached_host(hostname: str) -> None:
    _cache_call("delete", _host_key(hostname))


def _cache_call(method: str, *args: object) -> object:
    try:
        return getattr(_platform_cache(), method)(*args)
    except RedisError as exc:
        logger.warning("platform cache unavailable (%s): %s", method, exc)
        return None


def forget_cached_hosts_of(organization: Organization) -> None:
    for hostname in Domain.objects.filter(tenant=organization).values_list("domain", flat=True):
        forget_cached_host(hostname)


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
    cache_key = _widget_key_cache_key(key)
    cached = _cache_call("get", cache_key)
    if cached == _MISSING:
        return None
    if cached is not None:
        return cached
    found = WidgetKey.objects.select_related("organization").filter(key=key, is_active=True).first()
    _cache_call("set", cache_key, found or _MISSING, settings.AURA_TENANT_CACHE_S if found else _MISSING_TTL_S)
    return found


def forget_cached_widget_key(key: str) -> None:
    _cache_call("delete", _widget_key_cache_key(key))
