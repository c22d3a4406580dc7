"""Built-in tools: what they answer and what they store."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from asgiref.sync import sync_to_async
from django_tenants.utils import tenant_context

from conversations.actions import do_start_conversation
from conversations.models import Handoff, Lead, VisitorProfile
from tenants.tenancy import run_in_tenant
from voice.models import Assistant
from voice.providers.base import ToolCall
from voice.tools.base import ToolBox, ToolContext
from voice.tools.builtins import BUILTIN_TOOLS, ForgetVisitor, opening_status

HOURS = {"mon": [["09:00", "12:00"], ["14:00", "18:00"]], "sat": [["10:00", "14:00"]]}


def test_open_now_in_the_business_time_zone():
    monday_10_paris = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # 10:00 in Paris
    status = opening_status(HOURS, "Europe/Paris", monday_10_paris)
    assert status["open_now"] is True and status["closes_at"] == "12:00"
    assert status["local_time"] == "Monday 10:00"
    assert status["week"]["Monday"] == "09:00–12:00, 14:00–18:00" and status["week"]["Sunday"] == "closed"


def test_closed_at_lunch_opens_again_the_same_day():
    status = opening_status(HOURS, "Europe/Paris", datetime(2026, 11, 30, 12, 30, tzinfo=UTC))  # 13:30 Paris
    assert status["open_now"] is False and status["next_opening"] == "today at 14:00"
    assert "We open again today at 14:00" in status["summary"]


def test_closed_on_sunday_opens_on_monday():
    status = opening_status(HOURS, "Europe/Paris", datetime(2026, 11, 29, 12, 0, tzinfo=UTC))  # Sunday
    assert status["open_now"] is False and status["next_opening"] == "tomorrow at 09:00"
    saturday_evening = opening_status(HOURS, "Europe/Paris", datetime(2026, 11, 28, 18, 0, tzinfo=UTC))
    assert saturday_evening["next_opening"] == "Monday at 09:00"
    assert opening_status({}, "UTC", datetime(2026, 11, 28, tzinfo=UTC))["summary"] == "We have no opening hours set."


@pytest.fixture
def conversation(alpha):
    with tenant_context(alpha.organization):
        assistant = Assistant.objects.get(is_default=True)
        return do_start_conversation(
            conversation_id=uuid.uuid4(),
            assistant_id=assistant.pk,
            visitor_id="visitor-1",
            channel="text",
            origin="",
        )


def _box(alpha, conversation, *names: str, transcript=()) -> ToolBox:
    async def run_db(fn, **kwargs):
        return await run_in_tenant(alpha.organization, fn, **kwargs)

    ended: list[str] = []
    context = ToolContext(
        conversation_id=str(conversation.pk),
        visitor_id="visitor-1",
        assistant_id=conversation.assistant_id,
        time_zone="UTC",
        business_hours=HOURS,
        run_db=run_db,
        transcript=lambda: list(transcript),
        end_conversation=ended.append,
    )
    box = ToolBox([BUILTIN_TOOLS[name]() if name in BUILTIN_TOOLS else ForgetVisitor() for name in names], context)
    box.ended = ended  # type: ignore[attr-defined]
    return box


async def _run(box: ToolBox, name: str, arguments: dict) -> tuple[str, bool]:
    run = await box.run(ToolCall(id="1", name=name, arguments=json.dumps(arguments)), round_=1)
    return run.result, run.is_error


@pytest.mark.django_db(transaction=True)
async def test_a_lead_is_validated_before_it_is_stored(alpha, conversation):
    box = _box(alpha, conversation, "capture_lead")

    result, is_error = await _run(box, "capture_lead", {"name": "Anna", "email": "anna@", "phone": "12"})
    assert is_error and "not a valid email" in result and "not a valid phone" in result
    result, is_error = await _run(box, "capture_lead", {"name": "Anna"})
    assert is_error and "email address or a phone number is needed" in result

    result, is_error = await _run(
        box, "capture_lead", {"name": "Anna", "email": "anna@example.com", "phone": "+33 6 12 34 56 78", "note": "x"}
    )
    assert not is_error and json.loads(result)["saved"] is True

    def leads():
        with tenant_context(alpha.organization):
            return list(
                Lead.objects.filter(conversation=conversation).values_list(
                    "name", "email", "phone", "conversation_id", "visitor_id"
                )
            )

    stored = await sync_to_async(leads)()
    assert stored == [("Anna", "anna@example.com", "+33 6 12 34 56 78", uuid.UUID(str(conversation.pk)), "visitor-1")]


@pytest.mark.django_db(transaction=True)
async def test_a_handoff_records_the_request_with_the_transcript(alpha, conversation):
    transcript = [("user", "My order never came."), ("assistant", "I am sorry to hear that.")]
    box = _box(alpha, conversation, "handoff", transcript=transcript)

    result, is_error = await _run(box, "handoff", {"reason": "Missing order", "contact": "anna@example.com"})

    assert not is_error and "colleague" in json.loads(result)["summary"]

    def handoffs():
        with tenant_context(alpha.organization):
            return list(
                Handoff.objects.filter(conversation=conversation).values_list(
                    "reason", "contact", "transcript", "state"
                )
            )

    [(reason, contact, text, state)] = await sync_to_async(handoffs)()
    assert (reason, contact, state) == ("Missing order", "anna@example.com", "open")
    assert text == "Visitor: My order never came.\nAssistant: I am sorry to hear that."


@pytest.mark.django_db(transaction=True)
async def test_end_conversation_asks_the_session_to_end_after_the_reply(alpha, conversation):
    box = _box(alpha, conversation, "end_conversation")
    _, is_error = await _run(box, "end_conversation", {})
    assert not is_error and box.ended == ["assistant_ended"]  # type: ignore[attr-defined]


@pytest.mark.django_db(transaction=True)
async def test_forget_visitor_deletes_the_profile(alpha, conversation):
    def seed():
        with tenant_context(alpha.organization):
            VisitorProfile.objects.filter(visitor_id__in=["visitor-1", "visitor-2"]).delete()
            VisitorProfile.objects.create(visitor_id="visitor-1", name="Anna")
            VisitorProfile.objects.create(visitor_id="visitor-2", name="Ben")

    await sync_to_async(seed)()
    box = _box(alpha, conversation, "forget_visitor")
    _, is_error = await _run(box, "forget_visitor", {})

    def names():
        with tenant_context(alpha.organization):
            return list(
                VisitorProfile.objects.filter(visitor_id__in=["visitor-1", "visitor-2"]).values_list("name", flat=True)
            )

    assert not is_error and await sync_to_async(names)() == ["Ben"]


async def test_an_unknown_tool_or_a_crash_is_an_error_for_the_model():
    async def run_db(fn, **kwargs):
        raise RuntimeError("database down")

    context = ToolContext(
        conversation_id="c", visitor_id="v", assistant_id=1, time_zone="UTC", business_hours={}, run_db=run_db
    )
    box = ToolBox([BUILTIN_TOOLS["capture_lead"]()], context)
    run = await box.run(ToolCall(id="1", name="launch_rockets", arguments="{}"), round_=1)
    assert run.is_error and "no tool called launch_rockets" in run.result
    run = await box.run(
        ToolCall(id="2", name="capture_lead", arguments='{"name": "A", "phone": "+331234567"}'), round_=1
    )
    assert run.is_error and "failed unexpectedly" in run.result
