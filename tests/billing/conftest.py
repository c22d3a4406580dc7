"""Billing fixtures: plans, subscriptions from a chosen moment, and usage events written directly."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from billing.models import CapKind, Plan, PlanPeriod, Subscription, SubscriptionStatus, UsageEvent
from tenants.models import Organization
from tests.conftest import PASSWORD

_slugs = itertools.count(1)


def make_plan(**fields: object) -> Plan:
    defaults = {
        "name": "Starter",
        "monthly_fee": Decimal("49"),
        "included_minutes": 500,
        "overage_per_minute": Decimal("0.12"),
        "included_text_tokens": 2_000_000,
        "overage_per_1k_tokens": Decimal("0.004"),
        "max_concurrent_sessions": 5,
        "cap": CapKind.SOFT,
    }
    defaults.update(fields)
    return Plan.objects.create(slug=f"test-plan-{next(_slugs)}", **defaults)


def subscribe(
    organization: Organization,
    plan: Plan,
    *,
    at: datetime,
    status: str = SubscriptionStatus.ACTIVE,
    trial_ends_at: datetime | None = None,
) -> Subscription:
    """Replace the organization's subscription with one on ``plan`` since ``at``."""
    Subscription.objects.filter(organization=organization).delete()
    subscription = Subscription.objects.create(
        organization=organization, plan=plan, status=status, started_at=at, trial_ends_at=trial_ends_at
    )
    PlanPeriod.objects.create(subscription=subscription, plan=plan, starts_at=at)
    return subscription


def add_event(
    organization: Organization,
    metric: str,
    quantity: Decimal | int | str,
    at: datetime,
    *,
    channel: str = "voice",
    cost: Decimal | str | None = "0",
    provider: str = "",
    model: str = "",
) -> UsageEvent:
    return UsageEvent.objects.create(
        organization=organization,
        metric=metric,
        quantity=Decimal(quantity),
        channel=channel,
        provider=provider,
        model=model,
        occurred_at=at,
        cost=None if cost is None else Decimal(cost),
        idempotency_key=f"test:{uuid.uuid4()}",
    )


def add_voice_minutes(organization: Organization, minutes: Decimal | int | str, at: datetime) -> None:
    """Half the seconds as visitor audio, half as assistant audio."""
    seconds = Decimal(minutes) * 60
    add_event(organization, "audio_in_seconds", seconds / 2, at)
    add_event(organization, "audio_out_seconds", seconds / 2, at)


@pytest.fixture
def starter(db) -> Plan:
    return make_plan()


@pytest.fixture
def growth(db) -> Plan:
    return make_plan(
        name="Growth",
        monthly_fee=Decimal("299"),
        included_minutes=4000,
        overage_per_minute=Decimal("0.09"),
        included_text_tokens=20_000_000,
        overage_per_1k_tokens=Decimal("0.003"),
        max_concurrent_sessions=25,
    )


@pytest.fixture
def staff_client(db) -> Client:
    """A platform staff member (superuser) logged in on the platform host."""
    get_user_model().objects.create_user("ops", password=PASSWORD, is_staff=True, is_superuser=True)
    client = Client(HTTP_HOST="localhost")
    assert client.login(username="ops", password=PASSWORD)
    return client


def tenant_admin_client(tenant) -> Client:
    """The tenant's first admin, logged in on the tenant's host."""
    client = Client(HTTP_HOST=tenant.host)
    client.post("/admin/login/", {"username": tenant.admin_email, "password": PASSWORD})
    return client
