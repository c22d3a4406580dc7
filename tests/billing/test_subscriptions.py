"""Subscriptions: a new organization's trial, the catalog seeded without overwriting edits, trials ending."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from aura.workflows.organizations import open_organization
from billing.actions import do_end_expired_trials, do_seed_catalog
from billing.models import Plan, ProviderPrice, Subscription
from tenants.actions import NewOrganization
from tenants.models import Organization
from tests.conftest import PASSWORD


def _gamma() -> NewOrganization:
    return NewOrganization(name="Gamma", slug="gamma", admin_email="admin@gamma.example", admin_password=PASSWORD)


@pytest.mark.django_db
def test_a_new_organization_starts_on_the_default_plans_trial():
    organization = open_organization(_gamma())

    subscription = Subscription.objects.get(organization=organization)
    assert (subscription.plan.slug, subscription.status) == ("trial", "trial")
    assert subscription.trial_ends_at - subscription.started_at == timedelta(days=14)
    assert list(subscription.periods.values_list("plan__slug", "ends_at")) == [("trial", None)]


@pytest.mark.django_db
def test_without_the_default_plan_creation_fails_clearly_and_leaves_nothing(settings):
    settings.AURA_BILLING_DEFAULT_PLAN = "platinum"

    with pytest.raises(ValidationError, match="setup_platform"):
        open_organization(_gamma())
    assert not Organization.objects.filter(slug="gamma").exists()


@pytest.mark.django_db
def test_seeding_again_adds_what_is_missing_and_keeps_staff_edits():
    Plan.objects.filter(slug="starter").update(monthly_fee=Decimal("59"))
    ProviderPrice.objects.filter(provider="openai", model="whisper-1").delete()

    created = do_seed_catalog()

    assert created == {"prices": 1, "plans": 0}
    assert Plan.objects.get(slug="starter").monthly_fee == Decimal("59")
    assert ProviderPrice.objects.get(model="gpt-4o-mini", metric="llm_output_tokens").price == Decimal("0.6")


@pytest.mark.django_db
def test_ended_trials_become_active(alpha):
    subscription = Subscription.objects.get(organization=alpha.organization)
    Subscription.objects.filter(pk=subscription.pk).update(status="trial", trial_ends_at=timezone.now())

    assert do_end_expired_trials() == 1
    assert Subscription.objects.get(pk=subscription.pk).status == "active"
