"""Webhook events of conversations (``conversation.started``, ``conversation.ended``, ``lead.captured``,
``handoff.requested``), built only when an endpoint of the organization listens. Called from
conversations.actions inside the tenant's schema."""

from __future__ import annotations

import uuid

from django.db import connection

from conversations.models import Conversation, Handoff, Lead, Role, Turn
from webhooks.actions import do_emit_event
from webhooks.models import EventType
from webhooks.queries import subscribed_event_types

SUMMARY_TEXT_LIMIT = 500


def _listens(event_type: str) -> bool:
    return event_type in subscribed_event_types(connection.tenant.pk)


def _conversation_data(conversation: Conversation) -> dict[str, object]:
    return {
        "id": str(conversation.id),
        "assistant_id": conversation.assistant_id,
        "visitor_id": conversation.visitor_id,
        "channel": conversation.channel,
        "origin": conversation.origin,
        "started_at": conversation.started_at,
    }


def emit_conversation_started(conversation: Conversation) -> None:
    if _listens(EventType.CONVERSATION_STARTED):
        do_emit_event(EventType.CONVERSATION_STARTED, {"conversation": _conversation_data(conversation)})


def emit_conversation_ended(conversation_id: uuid.UUID | str) -> None:
    """With a short transcript summary: turns, duration, the visitor's first words, the assistant's last heard ones."""
    if not _listens(EventType.CONVERSATION_ENDED):
        return
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        return
    turns = Turn.objects.filter(conversation_id=conversation.pk)
    first_visitor = turns.filter(role=Role.VISITOR).order_by("index").values_list("text", flat=True).first()
    # the last words the visitor heard: a reply nobody heard (cut before it played, failed) is not one
    last_heard = turns.filter(role=Role.ASSISTANT).exclude(heard_text="").order_by("-index")
    last_assistant = last_heard.values_list("heard_text", "text").first() or ("", "")
    ended_at = conversation.ended_at
    duration = (ended_at - conversation.started_at).total_seconds() if ended_at else None
    data = _conversation_data(conversation) | {
        "ended_at": ended_at,
        "end_reason": conversation.end_reason,
        "summary": {
            "turn_count": turns.count(),
            "duration_s": round(duration, 1) if duration is not None else None,
            "first_visitor_message": (first_visitor or "")[:SUMMARY_TEXT_LIMIT],
            # what the visitor heard of it (an interrupted reply was cut)
            "last_assistant_message": (last_assistant[0] or last_assistant[1] or "")[:SUMMARY_TEXT_LIMIT],
        },
    }
    do_emit_event(EventType.CONVERSATION_ENDED, {"conversation": data})


def emit_lead_captured(lead: Lead) -> None:
    if _listens(EventType.LEAD_CAPTURED):
        do_emit_event(EventType.LEAD_CAPTURED, {"lead": _lead_data(lead)})


def emit_handoff_requested(handoff: Handoff) -> None:
    if _listens(EventType.HANDOFF_REQUESTED):
        data = {
            "id": handoff.pk,
            "conversation_id": str(handoff.conversation_id),
            "reason": handoff.reason,
            "contact": handoff.contact,
            "transcript": handoff.transcript,
            "created_at": handoff.created_at,
        }
        do_emit_event(EventType.HANDOFF_REQUESTED, {"handoff": data})


def _lead_data(lead: Lead) -> dict[str, object]:
    return {
        "id": lead.pk,
        "conversation_id": str(lead.conversation_id) if lead.conversation_id else None,
        "visitor_id": lead.visitor_id,
        "name": lead.name,
        "email": lead.email,
        "phone": lead.phone,
        "note": lead.note,
        "created_at": lead.created_at,
    }
