"""Semantic end of turn against a fixed silence, on the labelled pauses of bench/data/turn_end.json.

    .venv/bin/python -m bench.turn_end --json

Each pause of the set is replayed through two policies:

* fixed: the turn ends after ``end_silence_ms`` (600 ms) of silence, then the utterance is transcribed;
* semantic (what a voice session does with semantic end of turn on): at ``min_silence_ms`` of silence
  the speech so far is transcribed (speculatively; ``--stt-ms`` later the transcript is there), the
  rules of ``voice.text.turn_end`` judge it, and the turn ends at ``min_silence_ms`` (complete),
  ``end_silence_ms`` (unsure) or ``max_silence_ms`` (incomplete), never before the verdict. When the
  turn ends with no new speech, the speculative transcript is the final one.

A premature cut-off: the policy ends the turn during a pause after which the speaker went on. The
response delay: from the end of the visitor's speech to the final transcript, at the pauses where the
speaker had finished (what the chat model waits for; it is the same afterwards for both policies).
The set's words are the true words: speech-to-text errors are not simulated (the end-to-end test
tests/voice/test_turn_end_e2e.py runs the same rules on what PocketSphinx hears).

Speech-to-text is billed by the audio sent, and each request sends the turn's audio so far: the set
has no audio, so ``stt_audio_s`` estimates it at ``WORD_MS`` (400 ms, 150 words a minute) a word since
the turn began plus ``EDGES_MS`` (the 300 ms pre-roll and 200 ms trailing silence a request carries).

``--audio`` adds a run on real speech: the speech fixtures fed in real time (20 ms a frame) through
the real ``TurnDetector`` and ``voice.pipeline.turn_end.TurnEnd`` with PocketSphinx on this CPU, the
fixed policy then transcribing each turn as the session does. It reports, per turn, the time from the
end of speech to the final transcript and the speech-to-text requests made (each one billed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

from bench.common import ROOT, summary
from voice.providers.base import Transcript
from voice.text.turn_end import Verdict, judge, silence_for

SET = ROOT / "bench" / "data" / "turn_end.json"
WORD_MS = 400
EDGES_MS = 500


def _audio_ms(pause: dict, turn_start_words: int) -> int:
    return (len(pause["words"].split()) - turn_start_words) * WORD_MS + EDGES_MS


def _load(path: Path) -> list[dict]:
    return json.loads(path.read_text())["utterances"]


def fixed(pauses: list[dict], *, end_silence_ms: int, stt_ms: int) -> dict:
    cut, delays, stt_requests, audio_ms, start = 0, [], 0, 0, 0
    for pause in pauses:
        length = pause["pause_ms"]
        start = 0 if pause["first"] else start
        if pause["finished"]:
            delays.append(end_silence_ms + stt_ms)
        elif length >= end_silence_ms:
            cut += 1
        else:
            continue
        stt_requests += 1  # the turn ends here: its audio since the last end is transcribed
        audio_ms += _audio_ms(pause, start)
        start = len(pause["words"].split())
    return {
        "cut_offs": cut,
        "delay_ms": summary(delays, 0),
        "stt_requests": stt_requests,
        "stt_audio_s": round(audio_ms / 1000, 1),
    }


def semantic(pauses: list[dict], *, min_silence_ms: int, end_silence_ms: int, max_silence_ms: int, stt_ms: int) -> dict:
    cut, delays, stt_requests, wasted, audio_ms, start = 0, [], 0, 0, 0, 0
    verdicts = {v: 0 for v in Verdict}
    wrong: list[dict] = []
    for pause in pauses:
        length = pause["pause_ms"]
        start = 0 if pause["first"] else start
        if length is not None and length < min_silence_ms:
            continue  # the speaker went on before any transcript was asked for
        stt_requests += 1
        audio_ms += _audio_ms(pause, start)  # every request is billed, used or dropped
        verdict_at = min_silence_ms + stt_ms
        if length is not None and length < verdict_at:
            wasted += 1  # speech resumed: the speculative transcript is cancelled
            continue
        verdict = judge(pause["words"])
        verdicts[verdict] += 1
        ends_at = max(
            verdict_at,
            silence_for(
                verdict, min_silence_ms=min_silence_ms, end_silence_ms=end_silence_ms, max_silence_ms=max_silence_ms
            ),
        )
        if pause["finished"]:
            delays.append(ends_at)  # the transcript is ready: the speculative one is reused
            if verdict == Verdict.INCOMPLETE:
                wrong.append({"words": pause["words"], "verdict": verdict, "finished": True})
        elif length >= ends_at:
            cut += 1
            start = len(pause["words"].split())  # a new turn starts after the cut
            wrong.append({"words": pause["words"], "verdict": verdict, "pause_ms": length, "finished": False})
        elif length is not None:
            wasted += 1
    return {
        "cut_offs": cut,
        "delay_ms": summary(delays, 0),
        "stt_requests": stt_requests,
        "stt_requests_discarded": wasted,
        "stt_audio_s": round(audio_ms / 1000, 1),
        "verdicts": {str(k): v for k, v in verdicts.items()},
        "mistakes": wrong,
    }


AUDIO_FIXTURES = ("hours", "booking", "long_question", "two_sentences", "name_pause")


class _CountingSpeechToText:
    """PocketSphinx, counting requests (a hosted provider bills each one)."""

    def __init__(self) -> None:
        from voice.providers.local import LocalSpeechToText

        self.inner, self.requests, self.audio_bytes = LocalSpeechToText(), 0, 0
        self.provider, self.model = self.inner.provider, self.inner.model

    def transcribe(self, pcm: bytes, sample_rate: int, *, language: str) -> AsyncIterator[Transcript]:
        self.requests += 1
        self.audio_bytes += len(pcm)
        return self.inner.transcribe(pcm, sample_rate, language=language)


async def _replay(name: str, config: object) -> dict:
    """One fixture in real time through the detector (and the turn-end stage when semantic)."""
    from tests.voice.client import read_wav
    from voice.audio.frames import FRAME_BYTES, FRAME_MS
    from voice.audio.vad import SpeechPaused, SpeechStopped, TurnDetector
    from voice.pipeline.turn_end import TurnEnd, transcribe

    pcm, _ = read_wav(f"{name}.wav")
    pcm += bytes(2 * 16000 * 2)  # 2 s more silence: every policy ends its turn
    detector, stt = TurnDetector(config), _CountingSpeechToText()
    stage = TurnEnd(stt, detector, config, language="en") if config.semantic else None  # type: ignore[attr-defined]
    voiced_at: dict[int, float] = {}  # frame index -> wall time it was fed
    pending: list[asyncio.Task] = []
    started = time.perf_counter()

    async def finish(stopped: SpeechStopped, speculation: asyncio.Task | None) -> tuple[str, float]:
        heard = await TurnEnd.result(speculation) if speculation is not None else None
        if heard is None:
            heard = await transcribe(stt, stopped.utterance, language="en")
        return heard.text, (time.perf_counter() - voiced_at[stopped.last_voiced]) * 1000

    for index, offset in enumerate(range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES), start=1):
        await asyncio.sleep(max(0.0, started + index * FRAME_MS / 1000 - time.perf_counter()))
        event = detector.process(pcm[offset : offset + FRAME_BYTES])
        voiced_at[index] = time.perf_counter()
        if isinstance(event, SpeechPaused) and stage is not None:
            stage.paused(event)
        elif isinstance(event, SpeechStopped):
            speculation = stage.take(event) if stage is not None else None
            pending.append(asyncio.create_task(finish(event, speculation)))
        if stage is not None:
            stage.check()
    turns = await asyncio.gather(*pending)
    return {
        "turns": [{"text": text, "speech_end_to_transcript_ms": round(ms)} for text, ms in turns],
        "stt_requests": stt.requests,
        "stt_audio_s": round(stt.audio_bytes / 32000, 2),
    }


def audio_runs(min_silence_ms: int, end_silence_ms: int, max_silence_ms: int) -> dict:
    from voice.audio.vad import TurnConfig

    fixed_config = TurnConfig(end_silence_ms=end_silence_ms)
    semantic_config = TurnConfig(
        end_silence_ms=end_silence_ms, semantic=True, min_silence_ms=min_silence_ms, max_silence_ms=max_silence_ms
    )
    from voice.providers.local import _decode

    _decode(bytes(16000))  # load PocketSphinx's model before timing anything
    results: dict = {"fixtures": {}}
    for name in AUDIO_FIXTURES:
        results["fixtures"][name] = {
            "fixed": asyncio.run(_replay(name, fixed_config)),
            "semantic": asyncio.run(_replay(name, semantic_config)),
        }
    for policy in ("fixed", "semantic"):
        runs = [fixture[policy] for fixture in results["fixtures"].values()]
        results[policy] = {
            "turns": sum(len(run["turns"]) for run in runs),
            "speech_end_to_transcript_ms": summary(
                [turn["speech_end_to_transcript_ms"] for run in runs for turn in run["turns"]], 0
            ),
            "stt_requests": sum(run["stt_requests"] for run in runs),
            "stt_audio_s": round(sum(run["stt_audio_s"] for run in runs), 2),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--set", type=Path, default=SET)
    parser.add_argument("--end-silence-ms", type=int, default=600)
    parser.add_argument("--min-silence-ms", type=int, default=300)
    parser.add_argument("--max-silence-ms", type=int, default=2000)
    parser.add_argument("--stt-ms", type=int, nargs="+", default=[150, 400], help="speech-to-text latencies to try")
    parser.add_argument("--audio", action="store_true", help="also replay the speech fixtures in real time")
    args = parser.parse_args()
    utterances = _load(args.set)
    pauses = [dict(pause, first=i == 0) for utterance in utterances for i, pause in enumerate(utterance["pauses"])]
    started = time.perf_counter()
    for _ in range(100):
        for pause in pauses:
            judge(pause["words"])
    judge_us = (time.perf_counter() - started) / (100 * len(pauses)) * 1e6
    results = {
        "set": {
            "utterances": len(utterances),
            "pauses": len(pauses),
            "unfinished_pauses": sum(not p["finished"] for p in pauses),
        },
        "settings": {
            "end_silence_ms": args.end_silence_ms,
            "min_silence_ms": args.min_silence_ms,
            "max_silence_ms": args.max_silence_ms,
        },
        "rules_us_per_call": round(judge_us, 2),
        "runs": [],
    }
    for stt_ms in args.stt_ms:
        results["runs"].append(
            {
                "stt_ms": stt_ms,
                "fixed": fixed(pauses, end_silence_ms=args.end_silence_ms, stt_ms=stt_ms),
                "semantic": semantic(
                    pauses,
                    min_silence_ms=args.min_silence_ms,
                    end_silence_ms=args.end_silence_ms,
                    max_silence_ms=args.max_silence_ms,
                    stt_ms=stt_ms,
                ),
            }
        )
    if args.audio:
        results["audio"] = audio_runs(args.min_silence_ms, args.end_silence_ms, args.max_silence_ms)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for run in results["runs"]:
        f, s = run["fixed"], run["semantic"]
        print(
            f"stt {run['stt_ms']} ms: cut-offs fixed {f['cut_offs']} / semantic {s['cut_offs']}; "
            f"delay p50 {f['delay_ms']['p50']} / {s['delay_ms']['p50']} ms, "
            f"p95 {f['delay_ms']['p95']} / {s['delay_ms']['p95']} ms; "
            f"requests {f['stt_requests']} / {s['stt_requests']}, audio sent {f['stt_audio_s']} / {s['stt_audio_s']} s"
        )


if __name__ == "__main__":
    main()
