"""Streaming speech-to-text over OpenAI's Realtime transcription API, against a fake that speaks its
wire events on a real loopback WebSocket (no database)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from core.netguard import Policy, provider_policy
from tests.fakes.openai_realtime_server import FakeRealtimeServer
from voice.providers.base import ErrorKind, ProviderError, SpeechToText, Transcript
from voice.providers.openai_realtime import OpenAIRealtimeSpeechToText, RealtimeTranscriptionStream, realtime_url

KEY = "sk-test-realtime-0123456789"
LOOPBACK = Policy(allow_loopback=True)  # the fake lives on 127.0.0.1; the refusal tests use the real policy
FRAME = b"\x01\x00" * 320  # 20 ms at 16 kHz


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeRealtimeServer]:
    with FakeRealtimeServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeRealtimeServer) -> FakeRealtimeServer:
    fake_server.reset()
    return fake_server


def open_stream(
    fake: FakeRealtimeServer, model: str = "gpt-4o-mini-transcribe", **options: object
) -> RealtimeTranscriptionStream:
    stream = RealtimeTranscriptionStream(
        url=realtime_url(fake.base_url), api_key=KEY, model=model, language="en-US", policy=LOOPBACK, **options
    )
    stream.start()
    return stream


async def speak(stream: RealtimeTranscriptionStream, ms: int) -> None:
    for _ in range(ms // 20):
        await stream.append(FRAME)


async def failure_of(stream: RealtimeTranscriptionStream) -> ProviderError:
    with pytest.raises(ProviderError) as failed:
        await stream.commit()
    return failed.value


async def failure_after_speech(stream: RealtimeTranscriptionStream) -> ProviderError:
    """300 ms spoken, then the commit's failure; the stream closed in any case."""
    try:
        await speak(stream, 300)
        return await failure_of(stream)
    finally:
        await stream.close()


async def test_audio_appended_then_committed_comes_back_as_its_transcript(fake: FakeRealtimeServer) -> None:
    stream = open_stream(fake)
    try:
        await speak(stream, 1000)
        transcript = await stream.commit()
    finally:
        await stream.close()

    assert transcript == Transcript(text="piece 1: 1.00 seconds", final=True)  # 1 s reached the server whole
    assert stream.appended_ms == 1000
    [session] = fake.sessions
    assert session.path == "/v1/realtime?intent=transcription"
    assert session.headers["Authorization"] == f"Bearer {KEY}"
    assert session.audio_bytes == 48000  # resampled to 24 kHz 16-bit
    assert session.session["audio"]["input"]["transcription"] == {"model": "gpt-4o-mini-transcribe", "language": "en"}
    assert session.session["audio"]["input"]["turn_detection"] is None  # we commit, not the server's VAD
    assert session.events[0] == "session.update"
    assert session.events[-1] == "input_audio_buffer.commit"


async def test_a_phone_call_is_streamed_at_its_own_8_khz_and_reaches_the_server_at_24_khz(
    fake: FakeRealtimeServer,
) -> None:
    stream = open_stream(fake, sample_rate=8000)
    try:
        for _ in range(50):
            await stream.append(b"\x01\x00" * 160)  # 20 ms at 8 kHz
        transcript = await stream.commit()
    finally:
        await stream.close()
    assert transcript.text == "piece 1: 1.00 seconds"
    assert stream.appended_ms == 1000  # billed as the second it is, not as half of one
    assert fake.sessions[0].audio_bytes == 48000


async def test_the_provider_opens_its_stream_at_the_sessions_rate(fake: FakeRealtimeServer) -> None:
    provider = OpenAIRealtimeSpeechToText(_Batch(), api_key=KEY, base_url=fake.base_url, policy=LOOPBACK)
    stream = provider.open_stream(language="en", sample_rate=8000)
    try:
        await stream.append(b"\x01\x00" * 4000)  # half a second at 8 kHz
        assert stream.appended_ms == 500
        assert (await stream.commit()).text == "piece 1: 0.50 seconds"
    finally:
        await stream.close()


async def test_each_commit_answers_for_the_audio_since_the_previous_one(fake: FakeRealtimeServer) -> None:
    stream = open_stream(fake)
    try:
        await speak(stream, 500)
        first = await stream.commit()
        await speak(stream, 300)
        second = await stream.commit()
    finally:
        await stream.close()
    assert (first.text, second.text) == ("piece 1: 0.50 seconds", "piece 2: 0.30 seconds")
    assert stream.appended_ms == 800


async def test_pieces_completed_out_of_order_each_go_to_their_own_commit(fake: FakeRealtimeServer) -> None:
    stream = open_stream(fake, model="fake-reorder")
    try:
        await speak(stream, 400)
        first = asyncio.create_task(stream.commit())
        await asyncio.sleep(0)
        await speak(stream, 200)
        second = await stream.commit()  # the server completes this one first
        assert (await first).text == "piece 1: 0.40 seconds"
    finally:
        await stream.close()
    assert second.text == "piece 2: 0.20 seconds"


async def test_the_deltas_show_the_words_so_far_before_the_transcript_is_complete(fake: FakeRealtimeServer) -> None:
    stream = open_stream(fake, model="fake-slow-300")
    seen: list[str] = []
    try:
        await speak(stream, 600)
        commit = asyncio.create_task(stream.commit())
        while not commit.done():
            if stream.partial and (not seen or seen[-1] != stream.partial):
                seen.append(stream.partial)
            await asyncio.sleep(0.005)
        transcript = await commit
    finally:
        await stream.close()
    assert transcript.text == "piece 1: 0.60 seconds"
    assert seen, "no partial transcript was seen while the words arrived"
    assert all(transcript.text.startswith(partial) for partial in seen)
    assert len(seen[0]) < len(transcript.text)


async def test_too_little_audio_is_an_empty_piece_and_does_not_join_the_next(fake: FakeRealtimeServer) -> None:
    stream = open_stream(fake)
    try:
        await speak(stream, 40)
        empty = await stream.commit()
        await speak(stream, 300)
        piece = await stream.commit()
        nothing = await stream.commit()  # nothing appended since
    finally:
        await stream.close()
    assert (empty.text, piece.text, nothing.text) == ("", "piece 1: 0.30 seconds", "")
    assert fake.sessions[0].events.count("input_audio_buffer.clear") == 1
    assert fake.sessions[0].commits == 1


async def test_an_error_event_fails_the_commit_and_the_stream(fake: FakeRealtimeServer) -> None:
    stream = open_stream(fake, model="fake-error")
    try:
        await speak(stream, 300)
        error = await failure_of(stream)
        await speak(stream, 300)
        again = await failure_of(stream)
    finally:
        await stream.close()
    assert error.kind == ErrorKind.UNAVAILABLE
    assert "server had an error" in str(error) and "server_error" in str(error)
    assert again is error  # a failed stream stays failed: the session transcribes in one batch instead
    assert KEY not in str(error)


@pytest.mark.parametrize(
    ("model", "said"),
    [
        ("fake-failed", "transcription failed: Audio could not be decoded."),  # the transcription failed
        ("fake-close", "1011"),  # the connection closed mid-commit
    ],
)
async def test_a_commit_the_server_cannot_answer_fails(fake: FakeRealtimeServer, model: str, said: str) -> None:
    error = await failure_after_speech(open_stream(fake, model=model))
    assert error.kind == ErrorKind.UNAVAILABLE
    assert said in str(error)


async def test_a_server_that_never_answers_fails_the_commit_at_its_timeout(fake: FakeRealtimeServer) -> None:
    stream = open_stream(fake, model="fake-silent", commit_timeout_s=0.3)
    try:
        await speak(stream, 300)
        error = await failure_of(stream)
        later = await failure_of(stream)
    finally:
        await stream.close()
    assert error.kind == ErrorKind.TIMEOUT
    assert "no transcript within 300 ms" in str(error)
    assert later is error


async def test_close_is_idempotent_and_fails_a_waiting_commit(fake: FakeRealtimeServer) -> None:
    stream = open_stream(fake, model="fake-silent", commit_timeout_s=30)
    await speak(stream, 300)
    commit = asyncio.create_task(stream.commit())
    while not fake.sessions or fake.sessions[0].commits == 0:
        await asyncio.sleep(0.01)
    await stream.close()
    await stream.close()
    with pytest.raises(ProviderError) as failed:
        await commit
    assert "closed" in str(failed.value)
    await stream.append(FRAME)  # a no-op once closed
    assert (await failure_of(stream)).kind == ErrorKind.UNAVAILABLE


async def test_closing_a_stream_that_never_connected_is_fine() -> None:
    stream = RealtimeTranscriptionStream(url="ws://127.0.0.1:9/v1/realtime", api_key=KEY, model="m", language="en")
    await stream.close()
    await stream.close()


async def test_audio_that_cannot_be_sent_is_bounded_and_fails_the_stream(fake: FakeRealtimeServer) -> None:
    stream = open_stream(fake, max_buffered_ms=100)
    try:
        await speak(stream, 400)  # append never waits: the audio piles up faster than it is sent
        error = await failure_of(stream)
    finally:
        await stream.close()
    assert error.kind == ErrorKind.UNAVAILABLE
    assert "not keeping up" in str(error)


async def test_a_refused_connection_fails_the_commit() -> None:
    stream = RealtimeTranscriptionStream(
        url="ws://127.0.0.1:9/v1/realtime?intent=transcription", api_key=KEY, model="m", language="en", policy=LOOPBACK
    )
    error = await failure_after_speech(stream)
    assert error.kind == ErrorKind.UNAVAILABLE


@pytest.mark.parametrize("allowed", ["AURA_PROVIDER_URLS_ALLOW_LOOPBACK", "AURA_PROVIDER_URLS_ALLOW_PRIVATE"])
async def test_the_url_policy_refuses_an_address_it_does_not_allow(fake: FakeRealtimeServer, settings, allowed) -> None:
    settings.AURA_PROVIDER_URLS_ALLOW_LOOPBACK = False
    settings.AURA_PROVIDER_URLS_ALLOW_PRIVATE = False
    base = fake.base_url if allowed.endswith("LOOPBACK") else "http://10.11.12.13:8000/v1"
    stream = RealtimeTranscriptionStream(
        url=realtime_url(base), api_key=KEY, model="m", language="en", policy=provider_policy
    )
    error = await failure_after_speech(stream)
    assert error.kind == ErrorKind.BAD_REQUEST
    assert "not called" in str(error)
    assert fake.handshakes == 0


async def test_the_policy_is_read_at_connection_time(fake: FakeRealtimeServer, settings) -> None:
    settings.AURA_PROVIDER_URLS_ALLOW_LOOPBACK = True
    stream = RealtimeTranscriptionStream(
        url=realtime_url(fake.base_url), api_key=KEY, model="gpt-4o-transcribe", language="", policy=provider_policy
    )
    try:
        await speak(stream, 200)
        transcript = await stream.commit()
    finally:
        await stream.close()
    assert transcript.text == "piece 1: 0.20 seconds"
    assert "language" not in fake.sessions[0].session["audio"]["input"]["transcription"]


async def test_a_redirect_is_not_followed() -> None:
    with FakeRealtimeServer() as target, FakeRealtimeServer(redirect_to="") as redirecting:
        redirecting.redirect_to = realtime_url(target.base_url)
        error = await failure_after_speech(open_stream(redirecting))
        assert error.kind == ErrorKind.BAD_REQUEST
        assert "307" in str(error) and "not followed" in str(error)
        assert redirecting.handshakes == 1
        assert target.handshakes == 0


async def test_a_redirect_on_the_same_host_is_not_followed_either() -> None:
    with FakeRealtimeServer() as server:
        server.redirect_to = f"ws://127.0.0.1:{server.port}/internal/realtime?intent=transcription"
        error = await failure_after_speech(open_stream(server))
        assert error.kind == ErrorKind.BAD_REQUEST
        assert "/internal/realtime" in str(error) and "not followed" in str(error)
        assert server.handshakes == 1
        assert server.sessions == []


class _Batch(SpeechToText):
    provider, model = "openai", "gpt-4o-mini-transcribe"

    async def transcribe(self, pcm: bytes, sample_rate: int, *, language: str):
        yield Transcript(text="batch", final=True)


async def test_the_provider_transcribes_in_batch_and_opens_streams(fake: FakeRealtimeServer) -> None:
    provider = OpenAIRealtimeSpeechToText(_Batch(), api_key=KEY, base_url=fake.base_url, policy=LOOPBACK)
    assert [t.text async for t in provider.transcribe(b"\0\0", 16000, language="en")] == ["batch"]
    stream = provider.open_stream(language="en")
    try:
        await speak(stream, 200)
        assert (await stream.commit()).text == "piece 1: 0.20 seconds"
    finally:
        await stream.close()
    assert (provider.provider, provider.model) == ("openai", "gpt-4o-mini-transcribe")


def test_the_realtime_url_of_a_base_url() -> None:
    assert realtime_url(None) == "wss://api.openai.com/v1/realtime?intent=transcription"
    assert realtime_url("http://10.0.0.5:8000/v1/") == "ws://10.0.0.5:8000/v1/realtime?intent=transcription"
    with pytest.raises(ValueError, match="http"):
        realtime_url("ftp://example.com/v1")
