"""Reads of organizations and domains, with the cached host lookup every request goes through."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

from django.conf import settings
from django.db import connection

from core.crypto import DecryptionError, decrypt
from tenants.cache import (
    _api_key_cache_key,
    _cache_call,
    _host_key,
    _widget_key_cache_key,
)
from tenants.hosts import origin_of
from tenants.models import API_KEY_PREFIX_LENGTH, ApiKey, Domain, Organization, WidgetKey

logger = logging.getLogger(__name__)
T = TypeVar("T")

_MISSING = "-"  # cached marker for an unknown host, short-lived so a new domain routes quickly
_MISSING_TTL_S = 10


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


# Assistants live in each organization's schema, in voice (an app above this one): voice tells how to
# find one (VoiceConfig.ready), so that a widget key can be checked to name one.
_ASSISTANT_FINDERS: list[Callable[[int], bool]] = []


def assistants_are_found_by(exists: Callable[[int], bool]) -> None:
    """Register ``exists(assistant_id)``: whether the current organization has that assistant."""
    _ASSISTANT_FINDERS[:] = [exists]


def assistant_exists(assistant_id: int) -> bool:
    """Whether the current organization (the schema this runs in) has the assistant."""
    if not _ASSISTANT_FINDERS:
        raise RuntimeError("no app registered how assistants are found (assistants_are_found_by)")
    return _ASSISTANT_FINDERS[0](assistant_id)


def primary_domain(organization: Organization) -> str | None:
    return Domain.objects.filter(tenant=organization, is_primary=True).values_list("domain", flat=True).first()


def organization_by_slug(slug: str) -> Organization | None:
    return Organization.objects.filter(slug=slug).first()


def tenant_url(organization: Organization, path: str = "/") -> str:
    """An absolute URL on the organization's host, with the platform URL's scheme and port."""
    return origin_of(primary_domain(organization) or "") + path


def widget_keys_of(organization: Organization) -> list[WidgetKey]:
    return list(WidgetKey.objects.filter(organization=organization).order_by("created_at"))


def widget_key(key: str) -> WidgetKey | None:
    """An active widget key with its organization, or None. Cached; dropped when the key is saved."""
    if not key.startswith("pk_") or len(key) > 64:
        return None
    return platform_cached(
        _widget_key_cache_key(key),
        lambda: WidgetKey.objects.select_related("organization").filter(key=key, is_active=True).first(),
    )


def widget_identity_secret(key: WidgetKey) -> str:
    """The key's identity secret in clear (to verify a site's identity hashes), or "" when it has none or
    no configured encryption key opens it (then no visitor of the key is verified)."""
    if not key.encrypted_identity_secret:
        return ""
    try:
        return decrypt(key.encrypted_identity_secret)
    except DecryptionError:
        logger.error("widget key %s: no encryption key opens its identity secret", key.pk)
        return ""


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


def api_keys_of(organization: Organization) -> list[ApiKey]:
    return list(ApiKey.objects.filter(organization=organization).order_by("-created_at"))


def admins_of(organizations: Iterable[Organization]) -> dict[int, list[str]]:
    """Each organization's admins (active staff users of its own schema), as "username <e-mail>".

    One ``UNION ALL`` query over the organizations' schemas (quoted names from our own rows), not a
    search-path switch per organization: the platform's organization list shows a page of them.
    """
    # Only ready organizations: one being opened may not have its schema (and tables) yet.
    organizations = [o for o in organizations if o.is_ready and o.schema_name and o.schema_name != "public"]
    if not organizations:
        return {}
    parts = [
        f"SELECT %s::bigint, username, email FROM {connection.ops.quote_name(o.schema_name)}.auth_user "
        "WHERE is_active AND (is_staff OR is_superuser)"
        for o in organizations
    ]
    found: dict[int, list[str]] = {o.pk: [] for o in organizations}
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts) + " ORDER BY 2", [o.pk for o in organizations])
        for organization_id, username, email in cursor.fetchall():
            found[organization_id].append(f"{username} <{email}>" if email and email != username else username)
    return found
