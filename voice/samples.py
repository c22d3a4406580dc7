"""A voice sample for the assistant form: one sentence, spoken by the provider, model and voice chosen."""

from __future__ import annotations

import asyncio
import io
import wave
from dataclasses import replace

from core.netguard import UnsafeURLError, check_url, provider_policy
from voice.offerings import CAPABILITIES, OPEN, TTS, voice_refusal
from voice.providers.registry import RoutingConfig, speech_for
from voice.queries import tenant_provider_keys
from voice.router.candidates import Candidate

SAMPLE_TEXT = "Hello! This is how I sound when I answer your visitors."
SAMPLE_TIMEOUT_S = 15.0
MAX_SAMPLE_BYTES = 24_000 * 2 * 20  # 20 s at 24 kHz: far more than the sentence takes


def voice_sample(*, provider: str, model: str, voice: str, speed: str, base_url: str = "") -> bytes | str:
    """WAV bytes of the sample sentence, or why there is none (in words, for the form)."""
    if refusal := CAPABILITIES[TTS].refusal(provider, model) or voice_refusal(provider, voice):
        return refusal
    if base_url := base_url.strip() if provider == OPEN else "":
        try:  # the same guard as the assistant's saved URL: the sample must not reach what a save could not
            check_url(base_url, policy=provider_policy)
        except UnsafeURLError as exc:
            return f"The server URL is refused: {exc}"
    try:
        rate = min(4.0, max(0.25, float(speed)))
    except ValueError:
        rate = 1.0
    config = replace(
        RoutingConfig(llm=(), stt=(), tts=()), tenant_keys=tenant_provider_keys(), openai_compatible_base_url=base_url
    )
    speech = speech_for(Candidate(provider, model), config)
    if isinstance(speech, str):
        return f"This voice cannot be played here: {speech}."
    try:
        pcm = asyncio.run(asyncio.wait_for(_collect(speech, voice, rate), SAMPLE_TIMEOUT_S))
    except TimeoutError:
        return "The voice provider did not answer in time."
    except Exception as exc:  # noqa: BLE001 - any provider failure is told to the admin, not a 500
        return f"The voice provider failed: {exc}"
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(speech.sample_rate)
        writer.writeframes(pcm)
    return buffer.getvalue()


async def _collect(speech: object, voice: str, speed: float) -> bytes:
    pcm = bytearray()
    async for chunk in speech.synthesize(SAMPLE_TEXT, voice=voice, speed=speed):  # type: ignore[attr-defined]
        pcm += chunk
        if len(pcm) >= MAX_SAMPLE_BYTES:
            break
    return bytes(pcm)
