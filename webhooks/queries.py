"""Reads of webhook endpoints, with the cached "which events does this organization want" lookup that
every emitted event goes through (most organizations have no webhooks: one Redis read, no query)."""

from __future__ import annotations

import logging

from django.core.cache import caches
from redis.exceptions import RedisError

from core.crypto import decrypt
from webhooks.cache import subscriptions_key as _key
from webhooks.models import WebhookEndpoint

logger = logging.getLogger(__name__)
_TTL_S = 300


def subscribed_event_types(organization_id: int) -> frozenset[str]:
    """Event types at least one active endpoint of the organization subscribed to. Cached; dropped on save."""
    cache = caches["platform"]
    try:
        cached = cache.get(_key(organization_id))
    except RedisError as exc:
        logger.warning("platform cache unavailable: %s", exc)
        cached = None
    if cached is not None:
        return frozenset(cached)
    events: set[str] = set()
    for subscribed in WebhookEndpoint.objects.filter(organization_id=organization_id, is_active=True).values_list(
        "events", flat=True
    ):
        events.update(subscribed)
    try:
        cache.set(_key(organization_id), sorted(events), _TTL_S)
    except RedisError as exc:
        logger.warning("platform cache unavailable: %s", exc)
    return frozenset(events)


def endpoints_for(organization_id: int, event_type: str) -> list[WebhookEndpoint]:
    return list(
        WebhookEndpoint.objects.filter(organization_id=organization_id, is_active=True, events__contains=[event_type])
    )


def endpoint_secret(endpoint: WebhookEndpoint) -> str:
    """The signing secret in clear (``whsec_…``): for signing, and for an admin who asks to see it."""
    return decrypt(endpoint.encrypted_secret)
