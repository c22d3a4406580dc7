"""The session's memory (voice.memory): what was said and heard, a running summary of what slid out of
the recent window, and what is remembered of the visitor across conversations (their profile)."""

from __future__ import annotations

import asyncio
import logging

from conversations.actions import do_record_summary, do_remember_visitor
from conversations.queries import visitor_profile
from voice.memory import SUMMARY_BATCH, Profile, compose, learn_profile, summarize, welcome_back
from voice.providers.base import ChatMessage, ChatModel, ProviderError
from voice.queries import AssistantSnapshot
from voice.recorder import ConversationRecorder
from voice.tasks import queue_summary

logger = logging.getLogger("voice.session")  # the session's log lines keep their logger name

PROFILE_TIMEOUT_S = 15.0


class SessionMemory:
    def __init__(
        self,
        assistant: AssistantSnapshot,
        *,
        chat: ChatModel,
        recorder: ConversationRecorder,
        conversation_id: str,
        visitor_id: str,
        in_worker: bool,
    ) -> None:
        self.assistant, self.chat, self.recorder = assistant, chat, recorder
        self.conversation_id, self.visitor_id = conversation_id, visitor_id
        # A session that lasts one request (the REST API's) leaves summaries to a Celery worker, so the
        # request never waits for one.
        self.in_worker = in_worker
        self.history: list[ChatMessage] = []  # what was said and heard; the model sees compose() of it
        self.summary = ""  # of the history before `summarized`
        self.summarized = 0  # messages of self.history the summary covers
        self.history_offset = 0  # the conversation's messages before self.history[0] (a resume: in the summary)
        self.summary_task: asyncio.Task[None] | None = None
        self.profile: Profile | None = None
        self.forgotten = False
        self.visitor_spoke = False

    @property
    def remembering(self) -> bool:
        """Whether this visitor is remembered across conversations (the assistant's choice, and a known visitor)."""
        return self.assistant.remember_visitors and bool(self.visitor_id)

    @property
    def remembered(self) -> bool:
        return self.profile is not None and not self.profile.is_empty

    def remember(self, message: ChatMessage) -> int:
        self.history.append(message)
        if message.role == "user":
            self.visitor_spoke = True
        return len(self.history) - 1

    def replace(self, index: int, message: ChatMessage) -> None:
        self.history[index] = message

    async def resume(self) -> None:
        """The same conversation on a new connection: the model continues from what was said and heard."""
        history = await self.recorder.resume()
        self.summary, self.history_offset = history.summary, history.first
        for role, text in history.messages:
            self.history.append(ChatMessage(role=role, content=text))

    async def recall_visitor(self) -> None:
        """Read what is remembered of the visitor, when the assistant remembers visitors."""
        if not self.remembering:
            return
        row = await self.recorder.call(visitor_profile, visitor_id=self.visitor_id)
        if row is not None:
            self.profile = Profile(name=row.name, preferences=row.preferences, open_requests=row.open_requests)

    def greeting(self) -> str:
        """The assistant's greeting, with a welcome back for a remembered visitor."""
        if self.profile is not None and self.assistant.greeting:
            return welcome_back(self.profile, self.assistant.greeting)
        return self.assistant.greeting

    def forget_visitor(self) -> None:
        self.forgotten = True
        self.profile = None

    def messages(self, *, context: str, pending: ChatMessage | None = None) -> list[ChatMessage]:
        """What the chat model is given for the next reply; ``pending``: a visitor's message not remembered
        yet (a reply started during the pause, before the turn is the visitor's: voice.parts.replies)."""
        return compose(
            self.assistant.instructions,
            self.history if pending is None else [*self.history, pending],
            recent_turns=self.assistant.recent_turns,
            summarized=self.summarized,
            summary=self.summary,
            profile=None if self.forgotten else self.profile,
            context=context,
        )

    def summarize_older_turns(self) -> None:
        """Summarise what has slid out of the recent window, in the background; replies never wait for it."""
        older = len(self.history) - self.assistant.recent_turns
        if older - self.summarized < SUMMARY_BATCH or (self.summary_task and not self.summary_task.done()):
            return
        if self.in_worker:
            self.summarized = older  # queued once for these messages; the worker reads them from the database
            self.recorder.call(queue_summary, conversation_id=self.conversation_id)
            return
        turns = self.history[self.summarized : older]
        self.summary_task = asyncio.create_task(self._summarize(turns, older), name=f"summary:{self.conversation_id}")

    async def finish(self, *, learn: bool) -> None:
        """After the session closed: let the summary under way finish, then learn the visitor's profile."""
        if self.summary_task and not self.summary_task.done():
            _, pending = await asyncio.wait({self.summary_task}, timeout=PROFILE_TIMEOUT_S)
            for task in pending:
                task.cancel()
        if learn:
            await self._remember_visitor()

    async def _summarize(self, turns: list[ChatMessage], through: int) -> None:
        try:
            summary, use = await summarize(self.chat, self.summary, turns)
        except ProviderError as exc:
            logger.warning("conversation %s: summary postponed: %s", self.conversation_id, exc)
            return
        if not summary:
            return
        self.summary, self.summarized = summary, through
        self.recorder.call(
            do_record_summary,
            conversation_id=self.conversation_id,
            summary=summary,
            through_index=self.history_offset + through,
            **use.as_kwargs(),
        )

    async def _remember_visitor(self) -> None:
        if not (self.remembering and self.visitor_spoke) or self.forgotten:
            return
        try:
            async with asyncio.timeout(PROFILE_TIMEOUT_S):
                profile, use = await learn_profile(self.chat, self.profile or Profile(), self.history)
        except (TimeoutError, ProviderError) as exc:
            logger.warning("conversation %s: the visitor's profile was not updated: %s", self.conversation_id, exc)
            return
        self.recorder.call(
            do_remember_visitor,
            visitor_id=self.visitor_id,
            conversation_id=self.conversation_id,
            name=profile.name,
            preferences=profile.preferences,
            open_requests=profile.open_requests,
            **use.as_kwargs(),
        )
