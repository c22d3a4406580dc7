"""Each visitor turn's emotion and intent: a fast tier of rules, and the chat model when it is unsure.

* ``understand`` (the fast tier, µs): ``voice.text.emotion.feel`` and ``voice.text.intent.IntentMatcher``.
  It runs on the turn's way to the reply, so the router and the reply can use its labels at once.
* ``understand_with_model`` (the slow tier): one short request to the assistant's chat model, in the
  background; the reply never waits for it. Its answer replaces the fast labels on the stored turn
  and for the turns that follow, and its tokens are billed like a summary's (``ModelUse``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace

from voice.memory import ModelUse, complete, json_object_in
from voice.providers.base import ChatModel
from voice.text.emotion import UPSET, Emotion, feel
from voice.text.intent import IntentMatch, IntentMatcher, IntentSpec

RULES, MODEL = "rules", "model"
PROMPT_HEAD = "You label one message a visitor said to a business's voice assistant."
MAX_EXAMPLES_IN_PROMPT = 4


@dataclass(frozen=True, slots=True)
class Understanding:
    emotion: str  # voice.text.emotion.Emotion value
    intent: str  # an intent's or a built-in tool's name, "" for none
    source: str  # RULES or MODEL
    unsure: bool = False  # the fast tier asks for the slow one

    @property
    def upset(self) -> bool:
        return self.emotion in UPSET


def understand(text: str, matcher: IntentMatcher) -> Understanding:
    feeling = feel(text)
    intent = matcher.match(text)
    return Understanding(
        emotion=str(feeling.emotion), intent=intent.name, source=RULES, unsure=feeling.unsure or intent.unsure
    )


def prompt_for(matcher: IntentMatcher) -> str:
    """The slow tier's instructions: the labels, and the assistant's intents with a few examples each."""
    intents = "\n".join(
        f"- {spec.name}: e.g. " + "; ".join(f'"{e}"' for e in spec.examples[:MAX_EXAMPLES_IN_PROMPT])
        for spec in matcher.specs
    )
    return (
        f"{PROMPT_HEAD} Answer with JSON only: "
        '{"emotion": "<one of: neutral, positive, frustrated, angry, confused>", '
        '"intent": "<an intent name or empty>"}. '
        "Sarcasm counts as what it means. The intents:\n" + (intents or "(none)")
    )


async def understand_with_model(
    chat: ChatModel, text: str, matcher: IntentMatcher, fast: Understanding
) -> tuple[Understanding, ModelUse]:
    """The chat model's labels; an answer that is not the asked-for JSON keeps the fast tier's."""
    answer, use = await complete(chat, prompt_for(matcher), text)
    parsed = _parse(answer, matcher)
    if parsed is None:
        return replace(fast, unsure=False), use
    emotion, intent = parsed
    return Understanding(emotion=emotion, intent=intent, source=MODEL), use


def _parse(answer: str, matcher: IntentMatcher) -> tuple[str, str] | None:
    data = json_object_in(answer)
    if data is None:
        return None
    emotion, intent = data.get("emotion"), data.get("intent") or ""
    if emotion not in Emotion.__members__.values() or not isinstance(intent, str):
        return None
    return str(emotion), intent if intent in matcher.names else ""


def simulated_answer(prompt: str, text: str) -> str | None:
    """How the simulated chat model labels a turn: the fast tier's best guess, sure or not, with the
    intents read back from the prompt. Deterministic; it adds no understanding of its own."""
    if not prompt.startswith(PROMPT_HEAD):
        return None
    specs = [
        IntentSpec(name, tuple(re.findall(r'"([^"]+)"', examples)))
        for name, examples in re.findall(r"^- ([a-z0-9_]+): e\.g\. (.*)$", prompt, re.MULTILINE)
    ]
    found: IntentMatch = IntentMatcher(specs).match(text)
    return json.dumps({"emotion": str(feel(text).emotion), "intent": found.name})


# How the voice answers a feeling (Assistant.voice_follows_emotion): words for voices that take
# instructions, and a speed factor for every voice.
_STYLES: dict[str, tuple[str, float]] = {
    Emotion.FRUSTRATED: ("Speak calmly and warmly, a little slower, like someone who wants to help.", 0.93),
    Emotion.ANGRY: ("Speak calmly and warmly, a little slower, like someone who wants to help.", 0.93),
    Emotion.CONFUSED: ("Speak slowly and clearly, pausing between ideas.", 0.9),
    Emotion.POSITIVE: ("Speak in a bright, friendly tone.", 1.0),
}


def voice_style(emotion: str) -> tuple[str, float]:
    """(instructions, speed factor) for answering a visitor who sounds like ``emotion``."""
    return _STYLES.get(emotion, ("", 1.0))


def upset_hint(emotion: str, *, can_hand_off: bool) -> str:
    """What the model is told about an upset visitor (Assistant.escalate_upset_visitors)."""
    offer = (
        "offer to pass them to a human colleague (the handoff tool) if they want"
        if can_hand_off
        else "offer to have a human colleague follow up"
    )
    return f"The visitor sounds {emotion}. Acknowledge it in a few words, stay calm and concrete, and {offer}."


def intent_kind(intent: str, tools: frozenset[str]) -> str:
    """The metrics' bounded label for an intent."""
    if not intent:
        return "none"
    return intent if intent in tools else "configured"
