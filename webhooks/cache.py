"""The platform cache's entry of which events an organization's endpoints want (read by
``webhooks.queries``; an endpoint's save drops it, so it sits below the models and imports none of them)."""

from __future__ import annotations

import logging

from django.core.cache import caches
from django.db import transaction
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


def subscriptions_key(organization_id: int) -> str:
    return f"webhook-events:{organization_id}"


def forget_subscriptions(organization_id: int) -> None:
    def forget() -> None:
        try:
            caches["platform"].delete(subscriptions_key(organization_id))
        except RedisError as exc:
            logger.warning("platform cache unavailable: %s", exc)

    forget()
    transaction.on_commit(forget)
