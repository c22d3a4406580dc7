"""Reads of conversations. Run inside the tenant's schema."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class History:
    """A conversation's messages from ``first`` on (those before are in its summary), oldest first."""

    summary: str
    first: int
    messages: list[tuple[str, str]]  # (role, text): the visitor's words, what the assistant was heard to say


def conversation_history(conversation_id: str, *, limit: int = 200) -> History:
    """What a resumed conversation continues from: its running summary and the messages after it (at most
    ``limit``). Messages are counted as the session counts them, so ``summary_through`` lines up."""
    summary, through = conversation_summary(conversation_id)
    messages = []
    for role, text, heard in (
        Turn.objects.filter(conversation_id=conversation_id).order_by("index").values_list("role", "text", "heard_text")
    ):
        if role == Role.VISITOR:
            messages.append(("user", text))
        elif heard:
            messages.append(("assistant", heard))
    first = max(min(through, len(messages)), len(messages) - limit)
    return History(summary=summary, first=first, messages=messages[first:])


def visitor_profile(visitor_id: str) -> VisitorProfile | None:
    return VisitorProfile.objects.filter(visitor_id=visitor_id).first() if visitor_id else None


def conversation_summary(conversation_id: str) -> tuple[str, int]:
    """The running summary of a conversation and how many earlier messages it covers."""
    row = Conversation.objects.filter(pk=conversation_id).values_list("summary", "summary_through").first()
    return row if row else ("", 0)
