"""Emotion and intent of visitor turns, on the labelled turns of bench/data/emotion.json.

    .venv/bin/python -m bench.emotion --json

* fast tier: ``voice.understanding.understand`` (lexicon and rules for the emotion, example phrases for
  the intent): accuracy on every turn, accuracy on the turns it is sure of, µs per turn.
* slow tier share: the turns the fast tier is unsure of, which a voice session sends to the chat model.
* whole, simulated: the unsure turns answered by the simulated chat model through the real code path
  (``understand_with_model``: prompt, streaming, JSON parsing). The simulated model answers with the
  rules' best guess, so this measures the plumbing, not a language model's judgement; no real model
  is called (no network here). ``whole_if_model_right`` is the ceiling: the sure turns as the fast
  tier labels them, the unsure ones right.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from bench.common import ROOT
from voice.providers.simulated import SimulatedChat, SimulatedLatency
from voice.text.intent import IntentMatcher, IntentSpec
from voice.understanding import Understanding, understand, understand_with_model

SET = ROOT / "bench" / "data" / "emotion.json"


def _share(part: int, whole: int) -> float:
    return round(part / whole, 3) if whole else 0.0


async def _slow(turns: list[dict], fast: list[Understanding], matcher: IntentMatcher) -> tuple[list, int]:
    chat = SimulatedChat(SimulatedLatency(llm_first_token_ms=0, llm_tokens_per_s=100000))
    results, tokens = [], 0
    for turn, first in zip(turns, fast, strict=True):
        if not first.unsure:
            results.append(first)
            continue
        labelled, use = await understand_with_model(chat, turn["text"], matcher, first)
        tokens += use.input_tokens + use.output_tokens
        results.append(labelled)
    return results, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--set", type=Path, default=SET)
    args = parser.parse_args()
    data = json.loads(args.set.read_text())
    turns = data["turns"]
    matcher = IntentMatcher([IntentSpec(i["name"], tuple(i["examples"])) for i in data["intents"]], data["tools"])
    rounds = 200
    started = time.perf_counter()
    for _ in range(rounds):
        fast = [understand(turn["text"], matcher) for turn in turns]
    us_per_turn = (time.perf_counter() - started) / (rounds * len(turns)) * 1e6
    slow, tokens = asyncio.run(_slow(turns, fast, matcher))
    n = len(turns)
    sure = [(t, f) for t, f in zip(turns, fast, strict=True) if not f.unsure]
    unsure = n - len(sure)

    def right(pairs: list, key: str) -> int:
        return sum(1 for t, f in pairs if getattr(f, key) == t[key])

    pairs_fast = list(zip(turns, fast, strict=True))
    pairs_slow = list(zip(turns, slow, strict=True))
    confusion: dict[str, dict[str, int]] = {}
    for turn, got in pairs_fast:
        row = confusion.setdefault(turn["emotion"], {})
        row[got.emotion] = row.get(got.emotion, 0) + 1
    results = {
        "turns": n,
        "fast": {
            "emotion_accuracy": _share(right(pairs_fast, "emotion"), n),
            "intent_accuracy": _share(right(pairs_fast, "intent"), n),
            "emotion_accuracy_when_sure": _share(right(sure, "emotion"), len(sure)),
            "intent_accuracy_when_sure": _share(right(sure, "intent"), len(sure)),
            "us_per_turn": round(us_per_turn, 1),
        },
        "slow_tier_share": _share(unsure, n),
        "whole_simulated": {
            "emotion_accuracy": _share(right(pairs_slow, "emotion"), n),
            "intent_accuracy": _share(right(pairs_slow, "intent"), n),
            "model_tokens": tokens,
        },
        "whole_if_model_right": {
            "emotion_accuracy": _share(right(sure, "emotion") + unsure, n),
            "intent_accuracy": _share(right(sure, "intent") + unsure, n),
        },
        "emotion_confusion_fast": confusion,
        "fast_mistakes_when_sure": [
            {"text": t["text"], "want": [t["emotion"], t["intent"]], "got": [f.emotion, f.intent]}
            for t, f in sure
            if (f.emotion, f.intent) != (t["emotion"], t["intent"])
        ],
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    f = results["fast"]
    print(
        f"fast: emotion {f['emotion_accuracy']:.0%}, intent {f['intent_accuracy']:.0%}, {f['us_per_turn']} µs/turn; "
        f"slow tier on {results['slow_tier_share']:.0%} of turns"
    )


if __name__ == "__main__":
    main()
