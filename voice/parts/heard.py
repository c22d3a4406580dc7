"""Turn settlement: what the listener heard of each reply. A reply played to its end was heard whole (a
phone caller: what was spoken of it); a cut one only up to where playback stopped, as the client's
``response.played`` or the phone's marks report it. History and the stored turn keep only that, and the
client is told (``response.heard``) when it changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime

from conversations.actions import TurnRecord
from conversations.models import Delivery, Role
from voice.parts.admission import Quota, SendEvent
from voice.parts.memory import SessionMemory
from voice.pipeline.reply import Reply
from voice.providers.base import ChatMessage
from voice.recorder import ConversationRecorder

PLAYED_TOLERANCE_MS = 40.0
KEPT_REPLIES = 8

HeardAt = Callable[[int], float | None]


@dataclass(slots=True)
class SpokenReply:
    """A reply the listener may have heard (some of): where its text sits in history and its stored turn."""

    reply: Reply
    task: asyncio.Task[None]
    turn_id: asyncio.Future[int] | None = None
    history_index: int | None = None
    interrupted: bool = False
    heard_sent: str | None = None  # the text of the last response.heard: it is not sent again unchanged


class Settlement:
    def __init__(
        self,
        *,
        memory: SessionMemory,
        recorder: ConversationRecorder,
        quota: Quota,
        send_event: SendEvent,
        heard_at: HeardAt | None,
        phone: bool,
        ended: Callable[[], bool],
    ) -> None:
        self.memory, self.recorder, self.quota, self.send_event = memory, recorder, quota, send_event
        # What the transport knows the listener heard of a reply still playing at its end (a phone's
        # marks); None: it knows nothing more than the session's pacing.
        self.transport_heard_at = heard_at
        self.phone, self.ended = phone, ended
        self.replies: dict[int, SpokenReply] = {}
        self._pending_sends: set[asyncio.Task[None]] = set()

    def keep(self, spoken: SpokenReply) -> None:
        self.replies[spoken.reply.id] = spoken
        if len(self.replies) > KEPT_REPLIES:  # late playback reports only ever concern the last few
            del self.replies[min(self.replies)]

    def get(self, reply_id: int) -> SpokenReply | None:
        return self.replies.get(reply_id)

    def heard_at(self, reply_id: int) -> float | None:
        return self.transport_heard_at(reply_id) if self.transport_heard_at is not None else None

    # ---------------------------------------------------------------- a reply produced to its end (or failure)
    def delivered(self, reply: Reply) -> str:
        """What reached the visitor of a reply produced to its end, or to its failure: all of it when it was
        spoken in full, or shown (a widget shows every reply's text); a caller hears only what was spoken."""
        if not (reply.failed or reply.speech_failed) or not self.phone:
            return reply.text
        return reply.timeline.heard(reply.audio_sent_ms)

    def remember_delivered(self, spoken: SpokenReply) -> str:
        """Put what reached the visitor in history; returns it ("" when nothing did)."""
        heard = self.delivered(spoken.reply)
        if heard:
            spoken.history_index = self.memory.remember(ChatMessage(role="assistant", content=heard))
        return heard

    def record_finished(
        self, spoken: SpokenReply, heard: str, *, first_audio_ms: float | None, total_ms: float | None
    ) -> None:
        spoken.turn_id = self.recorder.turn(
            assistant_turn(
                spoken.reply, heard=heard, interrupted=False, first_audio_ms=first_audio_ms, total_ms=total_ms
            )
        )
        self.quota.check_after(spoken.turn_id)

    # ---------------------------------------------------------------- a cut reply, or a playback report
    def played(self, response_id: int, played_ms: float) -> None:
        """How much of a reply the listener heard, as the client reports it."""
        spoken = self.replies.get(response_id)
        if spoken is None:
            return
        if not spoken.interrupted and not spoken.task.done():
            return  # a report while the reply is still being produced says nothing about its end
        # A report for a reply played to its end changes nothing; one for a cut reply corrects the estimate.
        if not (spoken.interrupted or played_ms + PLAYED_TOLERANCE_MS < spoken.reply.timeline.total_ms):
            return
        if (heard := self.settle(spoken, played_ms)) is not None:
            self._background(self.send_event(heard))

    def settle_at_end(self) -> None:
        """Replies produced to their end but still queued at the listener's side when it left (a phone call
        hung up with audio in Twilio's buffer): keep only what the transport says was heard."""
        for reply_id, spoken in list(self.replies.items()):
            if not spoken.interrupted and spoken.task.done() and (heard := self.heard_at(reply_id)) is not None:
                self.played(reply_id, heard)

    def settle(self, spoken: SpokenReply, played_ms: float) -> dict[str, object] | None:
        """Keep only what was heard of a cut reply (history and stored turn); returns the ``response.heard``
        to send, or None when the heard text did not change since the last one."""
        reply = spoken.reply
        heard = reply.timeline.heard(played_ms) if not reply.text_only else reply.text
        message = ChatMessage(role="assistant", content=heard)
        if spoken.history_index is None:
            spoken.history_index = self.memory.remember(message)
        else:
            self.memory.replace(spoken.history_index, message)
        if spoken.turn_id is None:
            spoken.turn_id = self.recorder.turn(
                assistant_turn(reply, heard=heard, interrupted=True, played_ms=played_ms)
            )
            self.quota.check_after(spoken.turn_id)
        else:
            self.recorder.heard(
                spoken.turn_id,
                heard_text=heard,
                played_ms=played_ms,
                interrupted=True,
                delivery=delivery(reply, heard, interrupted=True),
            )
        if heard == spoken.heard_sent:
            return None
        spoken.heard_sent = heard
        return {"type": "response.heard", "response_id": reply.id, "text": heard, "played_ms": round(played_ms)}

    def _background(self, coroutine: Coroutine[object, object, None]) -> None:
        """Fire-and-forget a send from synchronous code, keeping a reference until it is done."""
        if self.ended():
            coroutine.close()
            return
        task = asyncio.create_task(coroutine)
        self._pending_sends.add(task)
        task.add_done_callback(self._pending_sends.discard)


def assistant_turn(
    reply: Reply,
    *,
    heard: str,
    interrupted: bool,
    played_ms: float | None = None,
    first_audio_ms: float | None = None,
    total_ms: float | None = None,
) -> TurnRecord:
    chosen = reply.llm_route.chosen if reply.llm_route else None
    return TurnRecord(
        role=Role.ASSISTANT,
        text=reply.text,
        heard_text=heard,
        interrupted=interrupted,
        delivery=delivery(reply, heard, interrupted=interrupted),
        started_at=reply.started_at_wall,
        ended_at=datetime.now(UTC),
        played_ms=played_ms,
        stt_ms=reply.stt_ms,
        endpoint_delay_ms=reply.endpoint_ms,
        llm_first_token_ms=reply.llm_first_token_ms,
        tts_first_byte_ms=reply.tts_first_byte_ms,
        first_audio_ms=first_audio_ms,
        total_ms=total_ms,
        audio_ms=reply.audio_sent_ms,
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
        tts_characters=reply.tts_characters,
        provider=chosen.provider if chosen else "",
        model=chosen.model if chosen else "",
        route=reply.route_record(),
        tool_calls=tuple(run.as_record() for run in reply.tool_runs),
    )


def delivery(reply: Reply, heard: str, *, interrupted: bool) -> str:
    """What became of a reply (conversations.models.Delivery): a failure first, then whether it was heard."""
    if reply.failed:
        return Delivery.REPLY_FAILED
    if reply.speech_failed:
        return Delivery.SPEECH_FAILED
    if interrupted:
        return Delivery.INTERRUPTED if heard else Delivery.UNHEARD
    return Delivery.COMPLETE
