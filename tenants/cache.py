"""The platform cache's keys and how they are dropped: host names, widget keys and API keys (the rows
``tenants.queries`` caches), and whatever other apps registered to drop with an organization. Below the
models, which drop their rows here when saved; imports none of them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from django.core.cache import caches
from django.db import transaction
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class Organization(Protocol):
    """What is read here of ``tenants.models.Organization`` (which imports this module): its related rows."""

    domains: Any
    widget_keys: Any
    api_keys: Any


def _platform_cache():  # noqa: ANN202 - django's cache type is not public
    return caches["platform"]


def _host_key(hostname: str) -> str:
    return f"tenant-host:{hostname.lower()}"


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


# Apps above this one cache rows that carry an organization's settings (telephony: its phone numbers).
# Each registers how to forget them (in its AppConfig.ready), and they go with the organization's hosts.
_ORGANIZATION_CACHES: list[Callable[[Organization], None]] = []


def also_forget_with_organization(forget: Callable[[Organization], None]) -> None:
    """Register ``forget(organization)``: called whenever an organization is saved (idempotent)."""
    if forget not in _ORGANIZATION_CACHES:
        _ORGANIZATION_CACHES.append(forget)


def forget_cached_hosts_of(organization: Organization) -> None:
    """Everything cached with the organization in it: its hosts, its widget and API keys, and what other
    apps registered (``also_forget_with_organization``: phone numbers, which carry the organization's
    settings, such as redaction and opening hours, to sessions, API calls and phone calls)."""
    for hostname in organization.domains.values_list("domain", flat=True):
        forget_cached_host(hostname)
    for key in organization.widget_keys.values_list("key", flat=True):
        forget_cached_widget_key(key)
    for prefix in organization.api_keys.values_list("prefix", flat=True):
        forget_cached_api_key(prefix)
    for forget in _ORGANIZATION_CACHES:
        forget(organization)


def _widget_key_cache_key(key: str) -> str:
    return f"widget-key:{key}"


def forget_cached_widget_key(key: str) -> None:
    forget_platform_cached(_widget_key_cache_key(key))


# ------------------------------------------------------------------ API keys
def _api_key_cache_key(prefix: str) -> str:
    return f"api-key:{prefix}"


def forget_cached_api_key(prefix: str) -> None:
    forget_platform_cached(_api_key_cache_key(prefix))
