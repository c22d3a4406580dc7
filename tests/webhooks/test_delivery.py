"""Webhooks: signed, retried with back-off until a 2xx, logged per attempt, replayable, SSRF-guarded,
and emitted by conversations and usage alerts once their transaction commits."""

from __future__ import annotations

import json
import uuid

import pytest
from django.core.exceptions import ValidationError
from django_tenants.utils import tenant_context

from conversations.actions import do_end_conversation, do_start_conversation
from core.signing import verify_signature as verify
from tests.outbound import redirect_to_internal
from tests.webhooks.receiver import receiver
from voice.models import Assistant
from webhooks import actions, tasks
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.queries import endpoint_secret


@pytest.fixture
def loopback_allowed(settings):
    settings.AURA_WEBHOOK_URLS_ALLOW_LOOPBACK = True


@pytest.fixture
def queued(monkeypatch) -> list[tuple[str, int, int]]:
    """Sends are queued, not run: (delivery id, attempt, countdown) of each."""
    calls: list[tuple[str, int, int]] = []
    monkeypatch.setattr(
        tasks, "enqueue_delivery", lambda d, *, attempt, countdown=0: calls.append((str(d), attempt, countdown))
    )
    return calls


def _endpoint(organization, url: str, events: list[str] | None = None) -> WebhookEndpoint:
    created = actions.do_save_webhook_endpoint(
        WebhookEndpoint(organization=organization, url=url, events=events or ["conversation.started"])
    )
    return created.endpoint


@pytest.mark.django_db
def test_an_emitted_event_is_signed_and_verifies(alpha, loopback_allowed, queued, django_capture_on_commit_callbacks):
    with receiver() as hook:
        endpoint = _endpoint(alpha.organization, hook.url)
        with django_capture_on_commit_callbacks(execute=True):
            [delivery] = actions.do_emit_event("conversation.started", {"x": 1}, organization=alpha.organization)
        assert queued == [(str(delivery.pk), 1, 0)]

        outcome = actions.do_attempt_delivery(delivery.pk, attempt=1)

    assert outcome.succeeded
    headers, body = hook.requests[0]
    assert verify(endpoint_secret(endpoint), body, headers["AURA-Signature"])
    assert not verify("whsec_wrong", body, headers["AURA-Signature"])
    event = json.loads(body)
    assert event["type"] == "conversation.started"
    assert event["data"] == {"x": 1}
    assert event["organization"]["slug"] == "alpha"
    assert headers["AURA-Event-Id"] == event["id"]


@pytest.mark.django_db
def test_failures_are_retried_with_back_off_and_stop_on_success(alpha, loopback_allowed, monkeypatch):
    scheduled: list[int] = []

    def run_next(delivery_id, *, attempt, countdown=0):
        scheduled.append(countdown)
        tasks.deliver(str(delivery_id), attempt)  # the next attempt, at once

    monkeypatch.setattr(tasks, "enqueue_delivery", run_next)
    with receiver(500, 503) as hook:
        _endpoint(alpha.organization, hook.url)
        [delivery] = actions.do_emit_event("conversation.started", {}, organization=alpha.organization)
        tasks.deliver(str(delivery.pk), 1)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert [a.status_code for a in delivery.attempts.order_by("number")] == [500, 503, 200]
    assert scheduled == list(actions.RETRY_DELAYS_S[:2])  # nothing queued after the success
    assert len(hook.requests) == 3
    first = delivery.attempts.get(number=1)
    assert len(first.response_body) <= 2048
    assert first.duration_ms >= 0


@pytest.mark.django_db
def test_a_delivery_fails_for_good_after_a_day_of_attempts(alpha, loopback_allowed, queued):
    with receiver(*([500] * 20)) as hook:
        _endpoint(alpha.organization, hook.url)
        [delivery] = actions.do_emit_event("conversation.started", {}, organization=alpha.organization)
        for attempt in range(1, actions.MAX_ATTEMPTS + 1):
            actions.do_attempt_delivery(delivery.pk, attempt=attempt)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempt_count == actions.MAX_ATTEMPTS
    assert sum(actions.RETRY_DELAYS_S) <= 24 * 3600
    assert not actions.do_attempt_delivery(delivery.pk, attempt=actions.MAX_ATTEMPTS + 1).attempted


@pytest.mark.django_db
def test_a_redelivered_message_does_not_send_twice(alpha, loopback_allowed, queued):
    with receiver() as hook:
        _endpoint(alpha.organization, hook.url)
        [delivery] = actions.do_emit_event("conversation.started", {}, organization=alpha.organization)
        actions.do_attempt_delivery(delivery.pk, attempt=1)
        again = actions.do_attempt_delivery(delivery.pk, attempt=1)

    assert not again.attempted
    assert len(hook.requests) == 1


@pytest.mark.django_db
def test_redirects_are_not_followed(alpha, loopback_allowed, queued):
    with receiver(302, redirect_to="http://169.254.169.254/latest/meta-data/") as hook:
        _endpoint(alpha.organization, hook.url)
        [delivery] = actions.do_emit_event("conversation.started", {}, organization=alpha.organization)
        outcome = actions.do_attempt_delivery(delivery.pk, attempt=1)

    assert outcome.status_code == 302
    assert not outcome.succeeded
    assert len(hook.requests) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_to_the_platforms_metrics_is_not_followed(alpha, loopback_allowed, queued, status):
    with redirect_to_internal(status, "/metrics") as (redirecting, internal):
        _endpoint(alpha.organization, f"{redirecting.url}/hooks")
        [delivery] = actions.do_emit_event("conversation.started", {}, organization=alpha.organization)
        outcome = actions.do_attempt_delivery(delivery.pk, attempt=1)

    assert outcome.status_code == status and not outcome.succeeded
    assert len(redirecting.requests) == 1 and internal.requests == []
    assert "not followed" in delivery.attempts.get().error


@pytest.mark.django_db
def test_a_name_that_resolves_to_loopback_at_delivery_is_refused(alpha, settings, queued, monkeypatch):
    import socket

    settings.AURA_WEBHOOK_URLS_ALLOW_LOOPBACK = False
    real, answers = socket.getaddrinfo, ["93.184.216.34", "127.0.0.1"]  # public when subscribed, then loopback

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "hooks.example.test":
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers.pop(0) if len(answers) > 1 else answers[0], port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with receiver() as hook:
        _endpoint(alpha.organization, hook.url.replace("127.0.0.1", "hooks.example.test"))
        [delivery] = actions.do_emit_event("conversation.started", {}, organization=alpha.organization)
        actions.do_attempt_delivery(delivery.pk, attempt=1)

    assert hook.requests == []
    assert "refused" in delivery.attempts.get().error and "127.0.0.1" in delivery.attempts.get().error


@pytest.mark.django_db
def test_loopback_and_metadata_urls_are_refused_when_subscribing_and_when_delivering(alpha, settings, queued):
    settings.AURA_WEBHOOK_URLS_ALLOW_LOOPBACK = False
    for url in ("http://127.0.0.1:9/x", "http://169.254.169.254/latest", "http://localhost/x", "ftp://example.com/"):
        with pytest.raises(ValidationError):
            _endpoint(alpha.organization, url)

    settings.AURA_WEBHOOK_URLS_ALLOW_LOOPBACK = True
    with receiver() as hook:
        _endpoint(alpha.organization, hook.url)
        settings.AURA_WEBHOOK_URLS_ALLOW_LOOPBACK = False  # the rule tightened after subscribing
        [delivery] = actions.do_emit_event("conversation.started", {}, organization=alpha.organization)
        actions.do_attempt_delivery(delivery.pk, attempt=1)

    assert hook.requests == []
    assert "refused" in delivery.attempts.get().error


@pytest.mark.django_db
def test_replay_sends_the_same_event_again(alpha, loopback_allowed, queued):
    with receiver() as hook:
        _endpoint(alpha.organization, hook.url)
        [delivery] = actions.do_emit_event("conversation.started", {"n": 1}, organization=alpha.organization)
        actions.do_attempt_delivery(delivery.pk, attempt=1)
        replay = actions.do_replay_delivery(delivery)
        actions.do_attempt_delivery(replay.pk, attempt=1)

    assert replay.replay_of_id == delivery.pk
    assert [json.loads(body)["id"] for _, body in hook.requests] == [delivery.event_id] * 2


@pytest.mark.django_db
def test_nobody_listening_costs_no_delivery(alpha, queued):
    assert actions.do_emit_event("lead.captured", {}, organization=alpha.organization) == []
    with pytest.raises(ValueError, match="unknown webhook event"):
        actions.do_emit_event("lead.lost", {}, organization=alpha.organization)


@pytest.mark.django_db
def test_conversations_emit_started_and_ended_with_a_summary(alpha, queued, django_capture_on_commit_callbacks):
    _endpoint_unchecked(alpha.organization, ["conversation.started", "conversation.ended"])
    conversation_id = uuid.uuid4()
    with tenant_context(alpha.organization):
        assistant_id = Assistant.objects.order_by("pk").values_list("pk", flat=True).first()
        with django_capture_on_commit_callbacks(execute=True):
            do_start_conversation(
                conversation_id=conversation_id, assistant_id=assistant_id, visitor_id="v9", channel="text", origin=""
            )
        do_end_conversation(conversation_id=conversation_id, reason="visitor_ended")
        do_end_conversation(conversation_id=conversation_id, reason="visitor_ended")  # already ended: no event

    events = {d.event_type: json.loads(d.body) for d in WebhookDelivery.objects.filter(organization=alpha.organization)}
    assert set(events) == {"conversation.started", "conversation.ended"}
    assert WebhookDelivery.objects.filter(organization=alpha.organization).count() == 2
    ended = events["conversation.ended"]["data"]["conversation"]
    assert ended["id"] == str(conversation_id)
    assert ended["summary"]["turn_count"] == 0
    assert ended["end_reason"] == "visitor_ended"


def _endpoint_unchecked(organization, events: list[str]) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(organization=organization, url="https://hooks.example.com/x", events=events)
    actions.seal_secret(endpoint, actions.new_signing_secret())
    endpoint.save()
    return endpoint


@pytest.mark.django_db
def test_a_usage_alert_emits_threshold_reached(alpha, queued, monkeypatch):
    from billing import actions as billing_actions

    _endpoint_unchecked(alpha.organization, ["usage.threshold_reached"])
    monkeypatch.setattr(billing_actions, "_tenant_admin_emails", lambda organization: [])
    from datetime import UTC, datetime
    from decimal import Decimal

    from billing.periods import Period

    billing_actions._emit_threshold_reached(
        alpha.organization.pk, Period.month_of(datetime.now(UTC)), 80, Decimal("81.5")
    )

    delivery = WebhookDelivery.objects.get(organization=alpha.organization)
    data = json.loads(delivery.body)["data"]
    assert data["threshold_percent"] == 80
    assert data["used_percent"] == "81.5"


@pytest.mark.django_db
def test_lost_retries_are_picked_up_by_the_beat_job(alpha, queued):
    from datetime import timedelta

    from django.conf import settings as django_settings
    from django.utils import timezone

    assert "webhooks.retry_due" in {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    _endpoint_unchecked(alpha.organization, ["conversation.started"])
    [delivery] = actions.do_emit_event("conversation.started", {}, organization=alpha.organization)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=5))

    assert tasks.retry_due() == 1
    assert queued[-1] == (str(delivery.pk), 1, 0)


@pytest.mark.django_db
def test_no_lock_is_held_during_the_call_and_a_worker_dying_mid_call_is_recovered(alpha, queued, monkeypatch):
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from webhooks import http

    _endpoint_unchecked(alpha.organization, ["conversation.started"])
    [delivery] = actions.do_emit_event("conversation.started", {}, organization=alpha.organization)
    seen: dict[str, object] = {}
    outer = len(connection.atomic_blocks)  # the test's own transaction

    def dying_post(*args, **kwargs):
        seen["in_transaction"] = len(connection.atomic_blocks) > outer
        seen["claimed"] = WebhookDelivery.objects.get(pk=delivery.pk).attempt_count
        raise SystemExit("the worker died")

    monkeypatch.setattr(http, "post", dying_post)
    with pytest.raises(SystemExit):
        actions.do_attempt_delivery(delivery.pk, attempt=1)

    assert seen == {"in_transaction": False, "claimed": 1}, "the HTTP call runs outside any transaction"
    claimed = WebhookDelivery.objects.get(pk=delivery.pk)
    assert claimed.status == DeliveryStatus.PENDING and claimed.next_attempt_at > timezone.now()
    assert not actions.do_attempt_delivery(delivery.pk, attempt=1).attempted, "a redelivered message does nothing"
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    assert actions.due_deliveries() == [(str(delivery.pk), 2)]  # the beat job queues the next attempt
