"""What a visitor wants: the best of the assistant's configured intents and its built-in tools.

The fast tier of a turn's intent (``voice.understanding`` adds the chat model when this one is
unsure). Each intent has example phrases; a turn matches an example by the share of the example's
content words it contains (light stemming, small words ignored). Pure, a few µs a turn for a few
dozen examples.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# The built-in tools (voice.models.BuiltinTool) as intents, with phrases visitors use for them.
TOOL_EXAMPLES: dict[str, tuple[str, ...]] = {
    "business_hours": (
        "opening hours",
        "are you open",
        "open now",
        "when do you open",
        "when do you close",
        "what time do you open",
        "too late",
    ),
    "capture_lead": ("my email is", "my number is", "my phone number", "call me back", "reach me on", "contact me"),
    "handoff": ("human", "real person", "speak to someone", "talk to a person", "manager", "staff", "agent"),
    "end_conversation": ("goodbye", "bye", "that's all"),
    "search_knowledge": ("do you have parking", "is there", "how many people", "do you take", "wheelchair access"),
}

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SMALL = frozenset(
    re.findall(
        r"\S+",
        "a an the i me my we our you your to of for in on at is are am be do does did can could would will "
        "it this that and or please i'd i'm it's",
    )
)
MATCH_SCORE = 0.6  # share of an example's words that makes a match
SURE_SCORE = 0.99  # a whole example found, and no other intent as close: sure


@dataclass(frozen=True, slots=True)
class IntentSpec:
    name: str
    examples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IntentMatch:
    name: str  # "" for none
    score: float
    unsure: bool


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _content(text: str) -> frozenset[str]:
    return frozenset(_stem(w) for w in _WORD.findall(text.lower()) if w not in _SMALL)


class IntentMatcher:
    """The assistant's intents and tools, prepared once per session."""

    def __init__(self, intents: Sequence[IntentSpec], tools: Iterable[str] = ()) -> None:
        self.specs = specs = (*intents, *(IntentSpec(t, TOOL_EXAMPLES[t]) for t in tools if t in TOOL_EXAMPLES))
        self.names = tuple(spec.name for spec in specs)
        self._examples = [
            (spec.name, words) for spec in specs for example in spec.examples if (words := _content(example))
        ]

    def match(self, text: str) -> IntentMatch:
        words = _content(text)
        best: dict[str, float] = {}
        if words:
            for name, example in self._examples:
                score = len(example & words) / len(example)
                if score > best.get(name, 0.0):
                    best[name] = score
        ranked = sorted(best.items(), key=lambda item: -item[1])
        if not ranked or ranked[0][1] < MATCH_SCORE:
            near = bool(ranked) and ranked[0][1] >= MATCH_SCORE / 2 and len(words) >= 3
            return IntentMatch("", 0.0 if not ranked else round(ranked[0][1], 2), unsure=near)
        name, score = ranked[0]
        runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
        return IntentMatch(name, round(score, 2), unsure=score < SURE_SCORE or runner_up >= score)
