"""Reads of conversations. Run inside the tenant's schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from conversations.models import Channel, Conversation, EndReason, Role, Turn, VisitorProfile

RESUME_WINDOW = timedelta(minutes=10)
# A conversation cut by the network or a server restart can be picked up again; one the visitor
# ended, or that timed out, cannot.
_RESUMABLE_REASONS = (EndReason.DISCONNECTED, EndReason.SERVER_SHUTDOWN, "")
# The widget's own conversations: an API or phone conversation never continues in a widget.
WIDGET_CHANNELS = (Channel.VOICE, Channel.TEXT)


def resumable_conversation(conversation_id: str, *, assistant_id: int, visitor_id: str) -> Conversation | None:
    """The visitor's recent widget conversation with this assistant, if it may continue on a new connection."""
    try:
        uuid.UUID(conversation_id)
    except ValueError:
        return None
    cutoff = timezone.now() - RESUME_WINDOW
    # "Recent" is judged by the last thing that happened: a conversation left ACTIVE by a crashed
    # server is not resumable forever.
    return (
        Conversation.objects.filter(pk=conversation_id, assistant_id=assistant_id, visitor_id=visitor_id)
        .filter(channel__in=WIDGET_CHANNELS, end_reason__in=_RESUMABLE_REASONS)
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


# ---------------------------------------------------------------- emotion and intent of visitor turns
UPSET_EMOTIONS = ("frustrated", "angry")


def with_feeling(queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """Each conversation's last visitor emotion and how many of its turns were frustrated or angry."""
    last = (
        Turn.objects.filter(conversation=OuterRef("pk"), role=Role.VISITOR)
        .exclude(emotion="")
        .order_by("-index")
        .values("emotion")[:1]
    )
    return queryset.annotate(
        last_emotion=Subquery(last),
        upset_turns=Count("turns", filter=Q(turns__emotion__in=UPSET_EMOTIONS)),
    )


def with_emotion(queryset: QuerySet[Conversation], emotion: str) -> QuerySet[Conversation]:
    """Conversations in which the visitor sounded ``emotion`` at least once."""
    return queryset.filter(Exists(Turn.objects.filter(conversation=OuterRef("pk"), role=Role.VISITOR, emotion=emotion)))


def with_intent(queryset: QuerySet[Conversation], intent: str) -> QuerySet[Conversation]:
    """Conversations in which a visitor turn had ``intent``."""
    return queryset.filter(Exists(Turn.objects.filter(conversation=OuterRef("pk"), role=Role.VISITOR, intent=intent)))


def emotion_summary(turns: Iterable[Turn]) -> dict[str, object]:
    """A conversation's visitor emotions: counts per label, the dominant one (most turns; ties go to the later),
    the last one. Neutral dominates only when nothing else was heard."""
    counts: dict[str, int] = {}
    last = ""
    for turn in turns:
        if turn.role == Role.VISITOR and turn.emotion:
            counts[turn.emotion] = counts.get(turn.emotion, 0) + 1
            last = turn.emotion
    felt = {label: n for label, n in counts.items() if label != "neutral"} or counts
    dominant = max(felt, key=lambda label: felt[label]) if felt else ""
    return {"counts": counts, "dominant": dominant, "last": last}


def intents_seen() -> list[str]:
    return list(Turn.objects.exclude(intent="").order_by("intent").values_list("intent", flat=True).distinct()[:100])
