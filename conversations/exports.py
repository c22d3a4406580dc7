"""Conversations exported as JSON or CSV, streamed: the tenant admin's export and the API's use the same rows."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count, Exists, OuterRef, Prefetch, QuerySet

from conversations.api.serializers import (
    CONVERSATION_FIELDS,
    TURN_FIELDS,
    ConversationDetailSerializer,
    ConversationSerializer,
    TurnSerializer,
)
from conversations.models import Conversation, ToolCall, Turn
from conversations.queries import with_feeling

MAX_CONVERSATIONS = 10_000


def with_counts(queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
    return with_feeling(
        queryset.annotate(
            turn_count=Count("turns"),
            interrupted=Exists(Turn.objects.filter(conversation=OuterRef("pk"), interrupted=True)),
        )
    )


def for_export(queryset: QuerySet[Conversation]) -> Iterator[Conversation]:
    """Newest first, at most MAX_CONVERSATIONS, with turns and tool calls, read in chunks."""
    return (
        with_counts(queryset)
        .order_by("-started_at", "-id")[:MAX_CONVERSATIONS]
        .prefetch_related(
            Prefetch("turns", queryset=Turn.objects.order_by("index")),
            Prefetch("tool_calls", queryset=ToolCall.objects.select_related("turn").order_by("created_at", "id")),
        )
        .iterator(chunk_size=200)
    )


def json_chunks(conversations: Iterable[Conversation]) -> Iterator[str]:
    yield "["
    for number, conversation in enumerate(conversations):
        data = ConversationDetailSerializer(conversation).data
        yield ("," if number else "") + json.dumps(data, cls=DjangoJSONEncoder)
    yield "]"


def csv_lines(conversations: Iterable[Conversation]) -> Iterator[str]:
    """One row per turn, the conversation's columns repeated (a conversation without turns: one row)."""
    header = [f"conversation_{name}" for name in CONVERSATION_FIELDS] + [f"turn_{name}" for name in TURN_FIELDS]
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(row: list[object]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(row)
        return buffer.getvalue()

    yield line(header)
    for conversation in conversations:
        head = [ConversationSerializer(conversation).data[name] for name in CONVERSATION_FIELDS]
        for turn in list(conversation.turns.all()) or [None]:
            data = TurnSerializer(turn).data if turn is not None else {}
            yield line([_cell(value) for value in head + [data.get(name, "") for name in TURN_FIELDS]])


def _cell(value: object) -> object:
    """Visitors' words are data: a cell starting like a formula is quoted so a spreadsheet shows, not runs, it."""
    if isinstance(value, str) and value[:1] in _FORMULA_STARTS:
        return "'" + value
    return value


_FORMULA_STARTS = frozenset("=+-@\t\r")
