"""Quotas: the hard cap at its exact boundary, and concurrent-session slots taken atomically in Redis."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from billing.models import Subscription
from billing.periods import Period
from billing.queries import quota_status
from billing.sessions import ALL_SESSIONS_KEY, _redis, active_sessions_by_organization, slots_key, take_slot_sync
from tests.billing.conftest import add_event, make_plan, subscribe


def _month_start() -> datetime:
    return Period.month_of(timezone.now()).starts_at


def _hard_plan(**fields):
    return make_plan(included_minutes=10, included_text_tokens=0, cap="hard", **fields)


@pytest.mark.django_db
def test_the_hard_cap_refuses_at_exactly_the_allowance_not_before(alpha):
    subscribe(alpha.organization, _hard_plan(), at=_month_start())
    now = timezone.now()
    add_event(alpha.organization, "audio_in_seconds", "599.999", now)

    below = quota_status(alpha.organization.pk)
    assert below.allows_sessions and below.used_percent == Decimal("100.0")  # rounded for people, not for the cap

    add_event(alpha.organization, "audio_out_seconds", "0.001", now)
    at_cap = quota_status(alpha.organization.pk)
    assert not at_cap.allows_sessions
    assert at_cap.code == "quota_exceeded" and "usage limit" in at_cap.message


@pytest.mark.django_db
def test_soft_caps_only_alert_and_cancelled_subscriptions_are_refused(alpha, beta):
    subscribe(alpha.organization, make_plan(included_minutes=1), at=_month_start())
    add_event(alpha.organization, "audio_in_seconds", 3600, timezone.now())
    assert quota_status(alpha.organization.pk).allows_sessions

    subscribe(beta.organization, make_plan(), at=_month_start(), status="cancelled")
    assert quota_status(beta.organization.pk).code == "subscription_inactive"


@pytest.mark.django_db
def test_an_organization_without_a_subscription_has_no_limits(alpha):
    Subscription.objects.filter(organization=alpha.organization).delete()

    status = quota_status(alpha.organization.pk)
    assert status.allows_sessions and status.max_concurrent == 0


@pytest.mark.django_db
def test_slots_stop_at_the_limit_and_free_on_release(alpha):
    org = alpha.organization.pk
    assert take_slot_sync(org, "a", 2) and take_slot_sync(org, "b", 2)
    assert not take_slot_sync(org, "c", 2)
    assert take_slot_sync(org, "a", 2)  # renewing a slot it holds always works

    _redis().zrem(slots_key(org), "a")
    assert take_slot_sync(org, "c", 2)
    assert active_sessions_by_organization()[org] == 3  # a's global entry lapses with its TTL


@pytest.mark.django_db
def test_a_crashed_process_slot_lapses(alpha):
    org = alpha.organization.pk
    past = time.time() - 1
    _redis().zadd(slots_key(org), {"crashed": past})  # a slot nobody renewed: its process died
    _redis().zadd(ALL_SESSIONS_KEY, {f"{org}:crashed": past})

    assert take_slot_sync(org, "new", 1)
    assert active_sessions_by_organization()[org] == 1


@pytest.mark.django_db
def test_two_processes_racing_for_the_last_slot_get_exactly_one(alpha):
    org = alpha.organization.pk
    for round_ in range(25):
        _redis().delete(slots_key(org))
        take_slot_sync(org, "holder", 2)
        barrier, won = threading.Barrier(2), []

        def race(name: str, barrier: threading.Barrier, won: list[str]) -> None:
            barrier.wait()
            if take_slot_sync(org, name, 2):
                won.append(name)

        threads = [threading.Thread(target=race, args=(f"r{round_}-{n}", barrier, won)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1, won


def _post(tenant) -> tuple[int, dict, object]:
    response = Client().post(
        "/widget/session",
        data=json.dumps({"key": tenant.widget_key.key}),
        content_type="application/json",
        HTTP_HOST="localhost",
        HTTP_ORIGIN=tenant.origin,
    )
    return response.status_code, response.json(), response


@pytest.mark.django_db
def test_the_widget_endpoint_refuses_with_a_friendly_message(alpha):
    subscribe(alpha.organization, _hard_plan(max_concurrent_sessions=1), at=_month_start())
    assert _post(alpha)[0] == 200

    take_slot_sync(alpha.organization.pk, "someone", 1)
    status, body, response = _post(alpha)
    assert (status, body["error"]["code"]) == (429, "concurrent_limit")
    assert "busy" in body["error"]["message"] and response["Retry-After"] == "60"
    assert response["Access-Control-Allow-Origin"] == alpha.origin  # the widget can read the message

    _redis().delete(slots_key(alpha.organization.pk))
    add_event(alpha.organization, "audio_in_seconds", 600, timezone.now() - timedelta(seconds=1))
    status, body, _ = _post(alpha)
    assert (status, body["error"]["code"]) == (402, "quota_exceeded")


@pytest.mark.django_db
def test_last_month_usage_does_not_count_against_this_month(alpha):
    subscribe(alpha.organization, _hard_plan(), at=_month_start() - timedelta(days=40))
    add_event(alpha.organization, "audio_in_seconds", 6000, _month_start() - timedelta(seconds=1))

    assert quota_status(alpha.organization.pk).allows_sessions
    assert quota_status(alpha.organization.pk, now=_month_start() - timedelta(minutes=1)).code == "quota_exceeded"
