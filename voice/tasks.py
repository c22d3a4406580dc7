"""Celery: a conversation's running summary and the slow tier of a turn's emotion and intent, for sessions
that do not outlive a request (the REST API's text conversations). Queued inside the tenant's context
(tenant-schemas-celery carries the schema)."""

from __future__ import annotations

import asyncio

from celery import shared_task

from conversations.actions import do_record_summary, do_record_turn_understanding
from conversations.models import Conversation, Role, Turn
from conversations.queries import conversation_history
from voice.memory import SUMMARY_BATCH, summarize
from voice.providers.base import ChatMessage
from voice.providers.registry import providers_for
from voice.queries import assistant_snapshot
from voice.text.intent import IntentMatcher
from voice.understanding import MODEL, RULES, Understanding, understand_with_model


@shared_task(name="voice.summarize_conversation", ignore_result=True)
def summarize_conversation(conversation_id: str) -> int:
    """Summarise what has slid out of the recent window since the last summary; returns the messages
    now covered (0: nothing to do). Safe to run twice: a summary never moves backwards."""
    assistant_id = Conversation.objects.filter(pk=conversation_id).values_list("assistant_id", flat=True).first()
    assistant = assistant_snapshot(assistant_id) if assistant_id else None
    if assistant is None:
        return 0
    history = conversation_history(conversation_id)
    older = len(history.messages) - assistant.recent_turns
    if older < SUMMARY_BATCH:
        return 0
    turns = [ChatMessage(role=role, content=text) for role, text in history.messages[:older]]
    summary, use = asyncio.run(summarize(providers_for(assistant.routing).chat, history.summary, turns))
    if not summary:
        return 0
    do_record_summary(
        conversation_id=conversation_id, summary=summary, through_index=history.first + older, **use.as_kwargs()
    )
    return history.first + older


def queue_summary(*, conversation_id: str) -> None:
    """Queue it from the tenant's context (run through the session's recorder, off the event loop)."""
    summarize_conversation.delay(conversation_id)


@shared_task(name="voice.understand_turn", ignore_result=True)
def understand_turn(turn_id: int) -> str:
    """The chat model's emotion and intent of a visitor turn the rules were unsure of; returns the emotion
    ("" when there was nothing to do). Safe to run twice: a turn the model labelled is left alone."""
    turn = Turn.objects.filter(pk=turn_id, role=Role.VISITOR).select_related("conversation").first()
    if turn is None or turn.understood_by == MODEL:
        return ""
    assistant = assistant_snapshot(turn.conversation.assistant_id)
    if assistant is None:
        return ""
    matcher = IntentMatcher(assistant.intents, assistant.tools)
    fast = Understanding(emotion=turn.emotion, intent=turn.intent, source=RULES, unsure=True)
    chat = providers_for(assistant.routing).chat
    understood, use = asyncio.run(understand_with_model(chat, turn.text, matcher, fast))
    do_record_turn_understanding(
        turn_id=turn_id,
        emotion=understood.emotion,
        intent=understood.intent,
        understood_by=understood.source,
        **use.as_kwargs(),
    )
    return understood.emotion


def queue_understanding(*, turn_id: int) -> None:
    """Queue it from the tenant's context (run through the session's recorder, once the turn is stored)."""
    understand_turn.delay(turn_id)
