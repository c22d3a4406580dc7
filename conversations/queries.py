"""Reads of conversations. Run inside the tenant's schema."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db.models import Max, Q
from django.utils import timezone

from conversations.models import Conversation, EndReason, Role, Turn, VisitorProfile

RESUME_WINDOW = timedelta(minutes=10)
# A conversation cut by the network or a server restart can be picked up again; one the visitor
# ended, or that timed out, cannot.
_RESUMABLE_REASONS = (EndReason.DISCONNECTED, EndReason.SERVER_SHUTDOWN, "")


def resumable_conversation(conversation_id: str, *, assistant_id: int, visitor_id: str) -> Conversation | None:
    """The visitor's recent conversation with this assistant, if it may continue on a new connection."""
    try:
        uuid.UUID(conversation_id)
    except ValueError:
        return None
    cutoff = timezone.now() - RESUME_WINDOW
    # "Recent" is judged by the last thing that happened: a conversation left ACTIVE by a crashed
    # server is not resumable forever.
    return (
        Conversation.objects.filter(pk=conversation_id, assistant_id=assistant_id, visitor_id=visitor_id)
        .filter(end_reason__in=_RESUMABLE_REASONS)
        .annotate(last_turn_at=Max("turns__started_at"))
        .filter(
            Q(ended_at__gte=cutoff)
            | Q(ended_at__isnull=True, last_turn_at__gte=cutoff)
            | Q(ended_at__isnull=True, last_turn_at__isnull=True, started_at__gte=cutoff)
        )
        .first()
    )


def conversation_history(conversation_id: str, *, limit: int = 40) -> list[tuple[str, str]]:
    """(role, text) of the last turns, oldest first: the visitor's words and what the assistant was heard to say."""
    turns = Turn.objects.filter(conversation_id=conversation_id).order_by("-index")[:limit]
    history = []
    for turn in reversed(turns):
        if turn.role == Role.VISITOR:
            history.append(("user", turn.text))
        elif turn.heard_text:
            history.append(("assistant", turn.heard_text))
    return history


def visitor_profile(visitor_id: str) -> VisitorProfile | None:
    return VisitorProfile.objects.filter(visitor_id=visitor_id).first() if visitor_id else None


def conversation_summary(conversation_id: str) -> tuple[str, int]:
    """The running summary of a conversation and how many earlier messages it covers."""
    row = Conversation.objects.filter(pk=conversation_id).values_list("summary", "summary_through").first()
    return row if row else ("", 0)
