"""Preemptive replies: the reply starts during the visitor's pause and is released the instant the turn
ends there, or thrown away, unsent and unstored, when the visitor goes on speaking. Streaming
speech-to-text gives the pause its transcript. A fake transport and recorder; audio fed frame by frame."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence

from conversations.actions import do_record_unheard_reply
from tests.voice.audio.test_vad import silence, speech_only
from tests.voice.test_session_timers import FAST, FakeRecorder, FakeTransport, _session, _until
from voice.audio.vad import TurnConfig
from voice.providers.base import (
    ChatEvent,
    ChatMessage,
    ChatModel,
    ErrorKind,
    ProviderError,
    SpeechToText,
    TextDelta,
    ToolCall,
    ToolSpec,
    Transcript,
    TranscriptionStream,
    Usage,
)
from voice.providers.simulated import SimulatedChat
from voice.queries import PREEMPTIVE_PAUSE_MS
from voice.understanding import voice_style

CHUNK = 1280  # 40 ms at 16 kHz, as the widget sends


class Recorder(FakeRecorder):
    """Also keeps the calls a session makes (usage of unheard replies among them)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[object, dict]] = []

    def call(self, fn, /, **kwargs) -> asyncio.Future:
        self.calls.append((fn, kwargs))
        return super().call(fn, **kwargs)

    def unheard(self) -> list[dict]:
        return [kwargs for fn, kwargs in self.calls if fn is do_record_unheard_reply]


class Stream(TranscriptionStream):
    def __init__(self, owner: StreamingSpeechToText) -> None:
        self.owner, self.appended_ms, self.pending = owner, 0, 0
        self.closed = False

    async def append(self, pcm: bytes) -> None:
        self.appended_ms += len(pcm) // 32
        self.pending += len(pcm)

    async def commit(self) -> Transcript:
        self.owner.commits += 1
        if self.owner.gate is not None:  # the provider takes its time
            await self.owner.gate.wait()
        if self.owner.fail_commits:
            raise ProviderError(ErrorKind.UNAVAILABLE, "stream closed by the provider")
        pending, self.pending = self.pending, 0
        return Transcript(self.owner.words.pop(0) if self.owner.words else f"[{pending} bytes]", final=True)

    async def close(self) -> None:
        self.closed = True


class StreamingSpeechToText(SpeechToText):
    """Streams: each commit is the next of ``words``. Batch requests are counted (they should be rare)."""

    provider, model = "scripted", "scripted-stream"

    def __init__(self, *words: str, fail_commits: bool = False) -> None:
        self.words, self.fail_commits = list(words), fail_commits
        self.gate: asyncio.Event | None = None  # set: commits answer only once it is open
        self.commits = self.batch_requests = 0
        self.streams: list[Stream] = []

    def open_stream(self, *, language: str, sample_rate: int = 16000) -> TranscriptionStream | None:
        self.streams.append(Stream(self))
        return self.streams[-1]

    async def transcribe(self, pcm: bytes, sample_rate: int, *, language: str) -> AsyncIterator[Transcript]:
        self.batch_requests += 1
        yield Transcript("hello, the batch request heard this", final=True)


class WatchedChat(SimulatedChat):
    """The simulated model, noting what each call was asked and whether it ran to its end."""

    def __init__(self) -> None:
        super().__init__(FAST)
        self.asked: list[str] = []
        self.finished = 0

    async def stream(
        self, messages: Sequence[ChatMessage], *, tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[ChatEvent]:
        self.asked.append(messages[-1].content)
        async for event in super().stream(messages, tools=tools):
            yield event
        self.finished += 1


class BookingChat(ChatModel):
    """Asks for the booking tool first, then answers."""

    provider, model = "scripted", "booking"

    async def stream(
        self, messages: Sequence[ChatMessage], *, tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[ChatEvent]:
        if tools and messages[-1].role != "tool":
            yield ToolCall(id="call_1", name=tools[0].name, arguments="{}")
        else:
            yield TextDelta("Booked. See you then.")
        yield Usage(input_tokens=50, output_tokens=5)


def _preemptive_session(stt: SpeechToText, chat: ChatModel | None = None, **assistant):
    settings = {"turn": TurnConfig(pause_ms=PREEMPTIVE_PAUSE_MS), "preemptive_replies": True, **assistant}
    return _session(600, speech_speed=4.0, chat=chat or WatchedChat(), stt=stt, recorder=Recorder(), **settings)


async def _start(session) -> None:
    await session.handle_text(json.dumps({"type": "session.start", "sample_rate": 16000}))


async def _feed(session, pcm: bytes, chunk: int = CHUNK) -> None:
    for offset in range(0, len(pcm), chunk):
        await session.handle_audio(pcm[offset : offset + chunk])
        await asyncio.sleep(0)


async def _held_ready(session) -> None:
    """Until the reply started at the pause has its first audio ready (held, nothing sent)."""
    await _until(lambda: session.replies.held is not None and session.replies.held.reply.ready_at is not None)


def _of(transport: FakeTransport, kind: str) -> list[dict]:
    return [e for e in transport.events if e["type"] == kind]


async def test_a_reply_started_in_the_pause_is_released_when_the_turn_ends_there():
    stt, chat = StreamingSpeechToText("what are your opening hours"), WatchedChat()
    session, transport, recorder = _preemptive_session(stt, chat)
    await _start(session)

    # the visitor speaks, then pauses: the reply starts during the pause, and nothing of it is sent
    await _feed(session, silence(300) + speech_only("hours") + silence(PREEMPTIVE_PAUSE_MS + 40))
    await _held_ready(session)
    assert chat.asked == ["what are your opening hours"]
    assert _of(transport, "speech.stopped") == []
    assert _of(transport, "response.started") == [] and transport.audio_frames == 0

    # the silence goes on to the end of the turn: the held reply goes out at once, as reply 1
    await _feed(session, silence(700))
    done = await _until(lambda: _of(transport, "response.done"))
    assert [e["response_id"] for e in _of(transport, "response.started")] == [1]
    assert done[0]["status"] == "completed"
    assert done[0]["metrics"]["preemptive"] is True
    assert done[0]["metrics"]["ready_before_turn_end_ms"] > 0  # its audio waited for the turn, not the reverse
    assert done[0]["metrics"]["started_before_turn_end_ms"] >= done[0]["metrics"]["ready_before_turn_end_ms"]
    assert transport.audio_frames > 0
    assert chat.asked == ["what are your opening hours"]  # one model call for the turn: none afresh

    # events in the client's order: the turn's end, its transcript, then the reply
    kinds = [e["type"] for e in transport.events]
    assert kinds.index("speech.stopped") < kinds.index("transcript.final") < kinds.index("response.started")
    assert kinds.index("response.started") < kinds.index("response.text.delta") < kinds.index("response.done")

    # the turn's transcript came from the stream (one commit, at the pause); its audio is billed once
    visitor = [t for t in recorder.turns if t.role == "visitor"]
    assert [t.text for t in visitor] == ["what are your opening hours"]
    assert stt.commits == 1 and stt.batch_requests == 0
    assert visitor[0].route["stt_audio_ms"] == stt.streams[0].appended_ms > 0
    assert stt.streams[0].closed
    (stored,) = [t for t in recorder.turns if t.role == "assistant"]
    assert stored.text == done[0]["text"]
    assert stored.route["preemptive"] is True and stored.route["ready_before_turn_end_ms"] > 0  # for the phone
    assert recorder.unheard() == []
    await session.end("visitor_ended", 1000)


async def test_a_visitor_who_goes_on_after_the_pause_never_hears_the_reply_started_there():
    # each commit's words: the fixture has a comma pause (160 ms), committed after 100 ms of silence
    stt, chat = StreamingSpeechToText("I would like", "to book a table", "for two people", "tonight"), WatchedChat()
    session, transport, recorder = _preemptive_session(stt, chat)
    await _start(session)

    await _feed(session, silence(300) + speech_only("booking") + silence(PREEMPTIVE_PAUSE_MS + 40))
    await _held_ready(session)
    await _feed(session, speech_only("booking") + silence(800))  # goes on speaking, then the turn ends
    done = await _until(lambda: _of(transport, "response.done"))

    # one reply reached the client, numbered 1, answering the whole thought
    assert [e["response_id"] for e in _of(transport, "response.started")] == [1]
    assert [e["response_id"] for e in done] == [1]
    assert "metrics" in done[0] and done[0]["metrics"].get("preemptive") is True
    whole = "I would like to book a table for two people tonight"
    assert chat.asked == ["I would like to book a table", whole]  # no reply started at the comma's pause
    assert [t.text for t in recorder.turns if t.role == "visitor"] == [whole]
    assert len([t for t in recorder.turns if t.role == "assistant"]) == 1
    # the reply thrown away is billed (estimated: its usage never came), and never stored or sent
    (unheard,) = recorder.unheard()
    assert unheard["input_tokens"] > 0 and unheard["llm_provider"] == "simulated"
    deltas = "".join(e["delta"] for e in _of(transport, "response.text.delta"))
    assert deltas == done[0]["text"]
    await session.end("visitor_ended", 1000)


async def test_a_tool_call_waits_for_the_turn_and_a_thrown_away_reply_never_runs_it():
    stt = StreamingSpeechToText("book a table", "for two please")
    session, transport, recorder = _preemptive_session(stt, BookingChat(), tools=("capture_lead",))
    await _start(session)
    runs: list[str] = []
    assert session.tools is not None
    real_run = session.tools.run

    async def run(call, *, round_):
        runs.append(call.name)
        return await real_run(call, round_=round_)

    session.tools.run = run  # type: ignore[method-assign]

    await _feed(session, silence(300) + speech_only("booking") + silence(PREEMPTIVE_PAUSE_MS + 40))
    await _until(lambda: session.replies.held is not None and session.replies.held.reply.llm_rounds)
    await asyncio.sleep(0.05)
    assert runs == []  # the model asked for the tool; it waits for the turn to be the visitor's

    await _feed(session, speech_only("booking") + silence(800))  # the visitor goes on: that reply is gone
    await _until(lambda: _of(transport, "response.done"))
    assert runs == ["capture_lead"]  # once: for the reply the visitor hears
    assert [e["name"] for e in _of(transport, "response.tool")] == ["capture_lead"]
    (unheard,) = recorder.unheard()
    assert (unheard["input_tokens"], unheard["output_tokens"]) == (50, 5)  # its usage had come: the real figures
    await session.end("visitor_ended", 1000)


async def test_a_stream_that_fails_gives_way_to_one_request_and_the_turn_is_answered():
    stt = StreamingSpeechToText(fail_commits=True)
    session, transport, recorder = _preemptive_session(stt)
    await _start(session)

    await _feed(session, silence(300) + speech_only("hours") + silence(1000))
    await _until(lambda: _of(transport, "response.started"))
    assert [t.text for t in recorder.turns if t.role == "visitor"] == ["hello, the batch request heard this"]
    assert stt.batch_requests == 1
    assert all(stream.closed for stream in stt.streams)
    await session.end("visitor_ended", 1000)


async def test_without_preemptive_replies_the_model_is_asked_only_once_the_turn_ended():
    stt, chat = StreamingSpeechToText("what are your opening hours"), WatchedChat()
    session, transport, _ = _preemptive_session(stt, chat, preemptive_replies=False)
    await _start(session)

    await _feed(session, silence(300) + speech_only("hours") + silence(PREEMPTIVE_PAUSE_MS + 40))
    await asyncio.sleep(0.1)
    assert chat.asked == [] and session.replies.held is None
    await _feed(session, silence(700))
    done = await _until(lambda: _of(transport, "response.done"))
    assert "preemptive" not in done[0]["metrics"]
    assert chat.asked == ["what are your opening hours"]
    await session.end("visitor_ended", 1000)


async def test_a_commit_still_under_way_when_the_visitor_goes_on_stays_part_of_the_turn():
    # the pause's speculation waits for a slow commit; the visitor resumes before it answers: dropping the
    # speculation must not cancel the commit, whose words are the start of the turn
    stt, chat = StreamingSpeechToText("what are your", "opening hours"), WatchedChat()
    stt.gate = asyncio.Event()
    session, transport, recorder = _preemptive_session(stt, chat)
    await _start(session)

    await _feed(session, silence(300) + speech_only("hours") + silence(PREEMPTIVE_PAUSE_MS + 40))
    await _until(lambda: stt.commits == 1)
    await _feed(session, speech_only("hours"))  # goes on speaking while the commit is under way
    stt.gate.set()
    await _feed(session, silence(800))

    await _until(lambda: _of(transport, "transcript.final"))
    done = await _until(lambda: _of(transport, "response.done"))
    assert [t.text for t in recorder.turns if t.role == "visitor"] == ["what are your opening hours"]
    assert stt.batch_requests == 0  # both pieces came from the stream
    assert done[0]["status"] == "completed"
    assert chat.asked[-1] == "what are your opening hours"
    await session.end("visitor_ended", 1000)


async def test_every_stream_is_closed_when_the_session_ends_while_a_turn_waits_for_the_one_before():
    # turn 1's transcript is slow (its commit waits); turn 2 ends meanwhile and waits for turn 1 to be
    # stored first; the visitor leaves then: no turn's stream (a WebSocket to the provider) stays open
    stt = StreamingSpeechToText("what are your opening hours", "and tomorrow")
    stt.gate = asyncio.Event()
    session, _, _ = _preemptive_session(stt)
    await _start(session)

    await _feed(session, silence(300) + speech_only("hours") + silence(800))
    await _feed(session, speech_only("hours") + silence(800))
    await _until(lambda: len(stt.streams) == 2 and stt.commits >= 2)
    await session.end("visitor_ended", 1000)
    await asyncio.sleep(0.05)
    assert [stream.closed for stream in stt.streams] == [True, True]


async def test_turns_piling_up_unanswered_do_not_each_keep_a_stream_open():
    # a client sending audio much faster than it is spoken ends turn after turn while the first one's
    # transcript is still coming: each ended turn waits for the one before, and must not hold a connection
    stt = StreamingSpeechToText()
    stt.gate = asyncio.Event()
    session, transport, recorder = _preemptive_session(stt)
    await _start(session)

    await _feed(session, silence(300))
    for _ in range(6):
        await _feed(session, speech_only("hours") + silence(800), chunk=16 * CHUNK)  # 640 ms a message
    assert len(_of(transport, "speech.stopped")) == 6
    assert sum(not stream.closed for stream in stt.streams) <= 3

    stt.gate.set()  # the provider answers: every turn is heard and stored, in order
    await _until(lambda: len([t for t in recorder.turns if t.role == "visitor"]) == 6)
    assert all(stream.closed for stream in stt.streams)
    await session.end("visitor_ended", 1000)


class SystemWatchingChat(WatchedChat):
    def __init__(self) -> None:
        super().__init__()
        self.systems: list[str] = []

    async def stream(
        self, messages: Sequence[ChatMessage], *, tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[ChatEvent]:
        self.systems.append(messages[0].content)
        async for event in super().stream(messages, tools=tools):
            yield event


async def test_a_reply_started_in_the_pause_hears_how_the_visitor_sounds_in_this_turn():
    # an angry turn after a calm one: the reply started at the pause is told so, and sounds like it, as a
    # reply asked for after the turn ended would be (not the mood of the turn before)
    stt = StreamingSpeechToText("hello there", "this is ridiculous, I am furious")
    chat = SystemWatchingChat()
    session, transport, _ = _preemptive_session(stt, chat, escalate_upset_visitors=True, voice_follows_emotion=True)
    await _start(session)
    await _feed(session, silence(300) + speech_only("hours") + silence(1000))
    await _until(lambda: _of(transport, "response.done"))

    await _feed(session, speech_only("hours") + silence(PREEMPTIVE_PAUSE_MS + 40))
    await _held_ready(session)
    assert session.replies.held is not None
    assert "The visitor sounds angry" in chat.systems[-1]
    assert (session.replies.held.reply.style, session.replies.held.reply.speed) == (
        voice_style("angry")[0],
        4.0 * voice_style("angry")[1],
    )
    await session.end("visitor_ended", 1000)


async def test_a_held_reply_thrown_away_while_its_release_stops_another_reply_is_never_sent():
    session, transport, _ = _preemptive_session(StreamingSpeechToText())
    replies = session.replies

    async def send_event(event: dict) -> None:  # a real socket's send may give the loop a turn
        await asyncio.sleep(0)
        await transport.send_event(event)

    replies.send_event = send_event
    await _start(session)

    # a reply is being launched (a typed message's) when a pause's reply is prepared beside it
    launching = asyncio.create_task(replies.say("Let me tell you all about our opening hours. " * 5))
    await asyncio.sleep(0)
    replies.prepare([ChatMessage(role="user", content="hours")], None, pause=7)
    await launching
    held = replies.held
    assert held is not None and replies.producing()

    # the turn ends at that pause; while the release stops the other reply, the visitor speaks again
    release = asyncio.create_task(replies.release(7, detected_at=0.0, endpoint_ms=None, stt_ms=None))
    await asyncio.sleep(0)
    replies.discard()
    assert await release is False
    sent = {e.get("response_id") for e in transport.events if e["type"] in ("response.started", "response.text.delta")}
    assert held.reply.id not in sent
    assert replies.active is None or replies.active.reply is not held.reply
    await session.end("visitor_ended", 1000)


async def test_a_release_cancelled_by_the_session_end_leaves_no_reply_waiting_forever():
    stt, chat = StreamingSpeechToText("what are your opening hours"), WatchedChat()
    session, _, recorder = _preemptive_session(stt, chat)
    replies = session.replies
    real_send = replies.send_event

    async def send_event(event: dict) -> None:  # a real socket's send may give the loop a turn
        await asyncio.sleep(0)
        await real_send(event)

    await _start(session)
    await _feed(session, silence(300) + speech_only("hours") + silence(PREEMPTIVE_PAUSE_MS + 40))
    await _held_ready(session)
    held = replies.held
    assert held is not None and held.task is not None
    replies.send_event = send_event

    # the session ends (its answer task is cancelled) while the release is sending what the reply said
    release = asyncio.create_task(replies.release(held.pause, detected_at=0.0, endpoint_ms=None, stt_ms=None))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert replies.held is None and not held.released  # under way
    release.cancel()
    await asyncio.wait({release})
    await asyncio.sleep(0.05)
    assert held.task.done()  # not left waiting for a release that never comes
    assert len(recorder.unheard()) == 1  # and its tokens are billed
    await session.end("visitor_ended", 1000)


async def test_no_stream_opens_for_speech_that_starts_as_the_session_ends():
    # the visitor barges in; while the reply is being stopped (which waits), the session ends (its maximum
    # length, the quota): the turn that was starting must not open a stream nobody will close
    stt = StreamingSpeechToText()
    session, _, _ = _preemptive_session(stt)
    await _start(session)
    real_interrupt = session.turns.interrupt

    async def interrupt(reason: str) -> None:
        await real_interrupt(reason)
        await session.end("max_duration", 1000)  # what the timers' task does meanwhile

    session.turns.interrupt = interrupt
    pcm = silence(300) + speech_only("hours")
    for offset in range(0, len(pcm), CHUNK):
        if session.ended:  # no more audio is let in; the frame being heard goes on
            break
        await session.turns.hear(pcm[offset : offset + CHUNK])
    assert session.ended
    assert all(stream.closed for stream in stt.streams)


async def test_a_released_reply_is_stored_as_starting_after_the_turn_it_answers():
    # the conversation's timeline (API, exports): the reply the visitor heard starts once their turn
    # ended, however early it was produced; how early is in its route (preemptive, started_before_…)
    stt = StreamingSpeechToText("what are your opening hours")
    session, transport, recorder = _preemptive_session(stt)
    await _start(session)
    await _feed(session, silence(300) + speech_only("hours") + silence(PREEMPTIVE_PAUSE_MS + 40))
    await _held_ready(session)
    await asyncio.sleep(0.05)
    await _feed(session, silence(700))
    await _until(lambda: _of(transport, "response.done"))
    visitor, assistant = recorder.turns
    assert assistant.route["preemptive"] is True
    assert assistant.started_at >= visitor.ended_at
    await session.end("visitor_ended", 1000)


async def test_a_visitor_who_pauses_and_resumes_over_and_over_starts_a_bounded_number_of_replies():
    """A flood of pauses in one turn (speak, pause 300 ms, speak again...) must not buy a model call per
    pause: past MAX_SPECULATIONS_PER_TURN pauses, no reply starts until the turn ends."""
    from voice.pipeline.turn_end import MAX_SPECULATIONS_PER_TURN

    stt, chat = StreamingSpeechToText(*(f"piece {n}" for n in range(20))), WatchedChat()
    session, transport, recorder = _preemptive_session(stt, chat)
    await _start(session)

    pauses = 6
    said = speech_only("hours") + silence(400)
    for _ in range(pauses):
        for offset in range(0, len(said), 3200):  # 100 ms a message: within the session's message budget
            await session.handle_audio(said[offset : offset + 3200])
            await asyncio.sleep(0.01)  # the pause's transcript and its reply get to start
    await _feed(session, silence(800))
    await _until(lambda: _of(transport, "response.started"))

    assert _of(transport, "error") == []
    assert len(_of(transport, "speech.stopped")) == 1  # one turn, paused six times
    # each started reply was billed; no more than the cap started (without it: one a pause)
    assert 1 <= len(recorder.unheard()) <= MAX_SPECULATIONS_PER_TURN
    assert len(chat.asked) == len(recorder.unheard()) + 1  # and the one reply the visitor hears
    await session.end("visitor_ended", 1000)
