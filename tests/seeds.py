"""The public-schema rows of the seeded organizations, kept so they can be put back after a flush."""

from __future__ import annotations

from billing.models import Plan, PlanPeriod, ProviderPrice, Subscription
from tenants.models import Domain, Organization, WidgetKey

_ROWS: dict[str, list[dict[str, object]]] = {}
_MODELS = {
    "organizations": Organization,
    "domains": Domain,
    "widget_keys": WidgetKey,
    # billing's catalog and the seeded organizations' trials, also public-schema rows
    "plans": Plan,
    "prices": ProviderPrice,
    "subscriptions": Subscription,
    "plan_periods": PlanPeriod,
}


def remember() -> None:
    for name, model in _MODELS.items():
        _ROWS[name] = list(model.objects.values())


def restore() -> None:
    """Idempotent: does nothing while the rows are there."""
    if not _ROWS or Organization.objects.filter(slug="alpha").exists():
        return
    for name, model in _MODELS.items():
        model.objects.bulk_create([model(**row) for row in _ROWS[name]])
