"""Replies the visitor never heard, failed replies and cut-off text are marked as such wherever a
conversation is read: the tenant admin's transcript, the REST API, and the exports."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
from django.apps import apps
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from conversations.actions import TurnRecord, do_record_heard_text, do_record_turn, do_start_conversation
from conversations.models import Turn
from tests.api.conftest import api_client, make_key  # noqa: F401 - the API key fixture
from tests.conftest import PASSWORD
from voice.models import Assistant

pytestmark = pytest.mark.django_db
REPLIES = {
    "complete": ("We open at nine.", "We open at nine."),
    "interrupted": ("We open at nine and close at ten.", "We open at nine"),
    "unheard": ("Delivery takes forty minutes.", ""),
    "speech_failed": ("We deliver within five kilometres.", "We deliver within five kilometres."),
    "reply_failed": ("", ""),
}


@pytest.fixture
def conversation(alpha) -> str:
    now = timezone.now()
    with tenant_context(alpha.organization):
        started = do_start_conversation(
            conversation_id=uuid.uuid4(),
            assistant_id=Assistant.objects.get(is_default=True).pk,
            visitor_id="delivery-visitor",
            channel="voice",
            origin="",
        )
        for delivery, (text, heard) in REPLIES.items():
            do_record_turn(
                conversation_id=started.pk,
                record=TurnRecord(
                    role="assistant",
                    text=text,
                    heard_text=heard,
                    interrupted=delivery in ("interrupted", "unheard"),
                    delivery=delivery,
                    started_at=now,
                    ended_at=now,
                ),
            )
    return str(started.pk)


def test_the_admin_transcript_marks_what_was_not_heard_or_failed(alpha, conversation):
    admin = Client(HTTP_HOST=alpha.host)
    admin.post("/admin/login/", {"username": alpha.admin_email, "password": PASSWORD})

    page = admin.get(f"/admin/conversations/conversation/{conversation}/change/").content.decode()

    assert "Interrupted. Generated:" in page
    assert "Not heard. Generated: <s>Delivery takes forty minutes.</s>" in page
    assert "Speech failed: sent as text only" in page
    assert "Reply failed: the language model did not answer" in page


def test_the_api_and_its_exports_carry_each_replys_delivery(alpha, conversation, make_key):  # noqa: F811
    client = api_client(make_key(alpha))

    detail = client.get(f"/api/v1/conversations/{conversation}/").json()
    assert [turn["delivery"] for turn in detail["turns"]] == list(REPLIES)

    exported = json.loads(b"".join(client.get("/api/v1/conversations/export/", {"format": "json"}).streaming_content))
    assert [turn["delivery"] for turn in exported[0]["turns"]] == list(REPLIES)
    rows = list(
        csv.DictReader(
            io.StringIO(
                b"".join(client.get("/api/v1/conversations/export/", {"format": "csv"}).streaming_content).decode()
            )
        )
    )
    assert [row["turn_delivery"] for row in rows] == list(REPLIES)


def test_a_later_playback_report_updates_the_delivery(alpha, conversation):
    with tenant_context(alpha.organization):
        turn = Turn.objects.get(conversation_id=conversation, delivery="interrupted")

        do_record_heard_text(turn_id=turn.pk, heard_text="", played_ms=0.0, interrupted=True, delivery="unheard")

        turn.refresh_from_db()
        assert (turn.delivery, turn.heard_text, turn.played_ms) == ("unheard", "", 0.0)


def test_replies_stored_before_delivery_existed_are_classified_from_what_was_heard(alpha, conversation):
    migration = __import__("conversations.migrations.0008_turn_delivery", fromlist=["_existing_replies"])
    with tenant_context(alpha.organization):
        Turn.objects.filter(conversation_id=conversation).update(delivery="")

        migration._existing_replies(apps, None)

        found = dict(Turn.objects.filter(conversation_id=conversation).values_list("text", "delivery"))
    assert found["We open at nine."] == "complete"
    assert found["We open at nine and close at ten."] == "interrupted"
    assert found["Delivery takes forty minutes."] == "unheard"
