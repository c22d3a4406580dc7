"""Finding 6: calls are not left "in-progress" forever; Celery beat ends the ones nobody ended."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from telephony.models import Call, Direction
from telephony.tasks import end_stale_calls
from tests.telephony.conftest import ALPHA_NUMBER, CALLER
from webhooks.models import WebhookDelivery, WebhookEndpoint


def open_call(alpha_number, sid: str, *, age_s: int, streamed: bool) -> Call:
    call = Call.objects.create(
        organization=alpha_number.organization,
        phone_number=alpha_number,
        call_sid=sid,
        direction=Direction.INBOUND,
        from_number=CALLER,
        to_number=ALPHA_NUMBER,
        answered_at=timezone.now() - timedelta(seconds=age_s),
        conversation_id=uuid.uuid4() if streamed else None,
    )
    Call.objects.filter(pk=call.pk).update(started_at=timezone.now() - timedelta(seconds=age_s))
    return call


@pytest.mark.django_db
def test_calls_without_a_stream_or_open_too_long_are_ended_and_others_left_alone(alpha, alpha_number):
    WebhookEndpoint.objects.create(
        organization=alpha.organization,
        url="https://hooks.alpha.example/aura",
        events=["call.ended"],
        encrypted_secret="x",
        secret_hint="x",
    )
    never_streamed = open_call(
        alpha_number, "CA-never", age_s=settings.TELEPHONY_UNSTREAMED_CALL_S + 60, streamed=False
    )
    ringing_now = open_call(alpha_number, "CA-new", age_s=30, streamed=False)
    talking = open_call(alpha_number, "CA-talking", age_s=settings.TELEPHONY_UNSTREAMED_CALL_S + 60, streamed=True)
    orphaned = open_call(alpha_number, "CA-orphan", age_s=settings.TELEPHONY_CALL_MAX_S + 60, streamed=True)

    assert end_stale_calls() == 2

    ended = {c.call_sid: c for c in Call.objects.filter(ended_at__isnull=False)}
    assert set(ended) == {never_streamed.call_sid, orphaned.call_sid}
    assert all(c.status == "failed" and c.duration_s is None for c in ended.values())  # Twilio's report bills
    assert Call.objects.get(pk=ringing_now.pk).ended_at is None and Call.objects.get(pk=talking.pk).ended_at is None
    assert sorted(d.event_type for d in WebhookDelivery.objects.all()) == ["call.ended", "call.ended"]
    assert end_stale_calls() == 0  # once
    assert "telephony.end_stale_calls" in {s["task"] for s in settings.CELERY_BEAT_SCHEDULE.values()}
