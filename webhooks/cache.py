"""The platform cache's entry of which events an organization's endpoints want (read by
``webhooks.queries``; an endpoint's save drops it, so it sits below the models and imports none of them)."""

from __future__ import annotations

from tenants.cache import forget_platform_cached


def subscriptions_key(organization_id: int) -> str:
    return f"webhook-events:{organization_id}"


def forget_subscriptions(organization_id: int) -> None:
    forget_platform_cached(subscriptions_key(organization_id))
