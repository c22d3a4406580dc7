"""Understanding of the visitor's turns: emotion and intent (voice.understanding). The fast tier runs
inline on the way to the reply; the slow one (the chat model) in the background, never on its path."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable

from conversations.actions import do_record_turn_understanding
from voice.metrics import UNDERSTANDING_MODEL_CALLS, VISITOR_EMOTIONS, VISITOR_INTENTS
from voice.providers.base import ChatMessage, ChatModel, ProviderError
from voice.queries import AssistantSnapshot
from voice.recorder import ConversationRecorder
from voice.tasks import queue_understanding
from voice.text.intent import IntentMatcher
from voice.understanding import MODEL, Understanding, intent_kind, understand, understand_with_model

logger = logging.getLogger("voice.session")  # the session's log lines keep their logger name

UNDERSTANDING_TIMEOUT_S = 10.0


class TurnUnderstanding:
    """Labels each visitor turn; keeps the visitor's last emotion for the replies and the model's context."""

    def __init__(
        self,
        assistant: AssistantSnapshot,
        *,
        chat: ChatModel,
        recorder: ConversationRecorder,
        history: list[ChatMessage],
        in_worker: bool,
        ended: Callable[[], bool],
        name: str,
    ) -> None:
        self.assistant, self.chat, self.recorder, self.history = assistant, chat, recorder, history
        self.in_worker, self.ended, self.name = in_worker, ended, name
        self.matcher = IntentMatcher(assistant.intents, assistant.tools)
        self.visitor_emotion = ""  # of the visitor's last turn
        self.tasks: set[asyncio.Task[None]] = set()

    def now(self, text: str) -> Understanding:
        """The fast tier (µs), on the way to the reply: the router and the reply use it at once."""
        understood = understand(text, self.matcher)
        self.visitor_emotion = understood.emotion
        VISITOR_EMOTIONS.labels(understood.emotion, understood.source).inc()
        VISITOR_INTENTS.labels(intent_kind(understood.intent, frozenset(self.assistant.tools))).inc()
        return understood

    def peek(self, text: str) -> Understanding:
        """The fast tier's reading of words not yet a turn (a pause's transcript): nothing counted or kept."""
        return understand(text, self.matcher)

    def later(self, text: str, fast: Understanding, turn_id: asyncio.Future[int], history_index: int) -> None:
        """The slow tier, when the fast one is unsure and the assistant allows it: never on the reply's path."""
        if not (fast.unsure and self.assistant.understand_with_model) or self.ended():
            return
        if self.in_worker:  # a session of one request (REST API): a worker does it, the request never waits
            self.recorder.after_turn(turn_id, queue_understanding)
            return
        task = asyncio.create_task(
            self._ask_model(text, fast, turn_id, history_index), name=f"understanding:{self.name}"
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def settle(self) -> None:
        """Wait for the slow tier's labels still under way (bounded by UNDERSTANDING_TIMEOUT_S each)."""
        if self.tasks:
            await asyncio.wait(set(self.tasks))

    async def _ask_model(
        self, text: str, fast: Understanding, turn_id: asyncio.Future[int], history_index: int
    ) -> None:
        try:
            async with asyncio.timeout(UNDERSTANDING_TIMEOUT_S):
                understood, use = await understand_with_model(self.chat, text, self.matcher, fast)
        except (TimeoutError, ProviderError) as exc:
            UNDERSTANDING_MODEL_CALLS.labels("failed").inc()
            logger.info("conversation %s: the turn keeps the rules' labels: %s", self.name, exc)
            return
        UNDERSTANDING_MODEL_CALLS.labels("ok").inc()
        if understood.source == MODEL:  # a relabelled turn counts again, under the model's tier
            VISITOR_EMOTIONS.labels(understood.emotion, MODEL).inc()
        history = self.history
        if history_index < len(history) and history[history_index].content == text:
            history[history_index] = dataclasses.replace(history[history_index], emotion=understood.emotion)
            if not any(m.role == "user" for m in history[history_index + 1 :]):
                self.visitor_emotion = understood.emotion  # still the visitor's last word: later replies use it
        self.recorder.after_turn(
            turn_id,
            do_record_turn_understanding,
            emotion=understood.emotion,
            intent=understood.intent,
            understood_by=understood.source,
            **use.as_kwargs(),
        )
