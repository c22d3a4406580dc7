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
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench.common import ROOT, summary
from voice.text.turn_end import Verdict, judge, silence_for

SET = ROOT / "bench" / "data" / "turn_end.json"


def _load(path: Path) -> list[dict]:
    return json.loads(path.read_text())["utterances"]


def fixed(pauses: list[dict], *, end_silence_ms: int, stt_ms: int) -> dict:
    cut, delays, stt_requests = 0, [], 0
    for pause in pauses:
        length = pause["pause_ms"]
        if pause["finished"]:
            delays.append(end_silence_ms + stt_ms)
            stt_requests += 1
        elif length >= end_silence_ms:
            cut += 1
            stt_requests += 1
    return {"cut_offs": cut, "delay_ms": summary(delays, 0), "stt_requests": stt_requests}


def semantic(pauses: list[dict], *, min_silence_ms: int, end_silence_ms: int, max_silence_ms: int, stt_ms: int) -> dict:
    cut, delays, stt_requests, wasted = 0, [], 0, 0
    verdicts = {v: 0 for v in Verdict}
    wrong: list[dict] = []
    for pause in pauses:
        length = pause["pause_ms"]
        if length is not None and length < min_silence_ms:
            continue  # the speaker went on before any transcript was asked for
        stt_requests += 1
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
            wrong.append({"words": pause["words"], "verdict": verdict, "pause_ms": length, "finished": False})
        elif length is not None:
            wasted += 1
    return {
        "cut_offs": cut,
        "delay_ms": summary(delays, 0),
        "stt_requests": stt_requests,
        "stt_requests_discarded": wasted,
        "verdicts": {str(k): v for k, v in verdicts.items()},
        "mistakes": wrong,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--set", type=Path, default=SET)
    parser.add_argument("--end-silence-ms", type=int, default=600)
    parser.add_argument("--min-silence-ms", type=int, default=300)
    parser.add_argument("--max-silence-ms", type=int, default=2000)
    parser.add_argument("--stt-ms", type=int, nargs="+", default=[150, 400], help="speech-to-text latencies to try")
    args = parser.parse_args()
    utterances = _load(args.set)
    pauses = [pause for utterance in utterances for pause in utterance["pauses"]]
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
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for run in results["runs"]:
        f, s = run["fixed"], run["semantic"]
        print(
            f"stt {run['stt_ms']} ms: cut-offs fixed {f['cut_offs']} / semantic {s['cut_offs']}; "
            f"delay p50 {f['delay_ms']['p50']} / {s['delay_ms']['p50']} ms, "
            f"p95 {f['delay_ms']['p95']} / {s['delay_ms']['p95']} ms"
        )


if __name__ == "__main__":
    main()
