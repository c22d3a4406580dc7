"""voice.understanding: the fast tier's labels, the slow tier through a chat model, the voice's style."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from voice.providers.base import ChatEvent, ChatMessage, ChatModel, TextDelta, ToolSpec, Usage
from voice.providers.simulated import SimulatedChat, SimulatedLatency
from voice.text.intent import IntentMatcher, IntentSpec
from voice.understanding import RULES, prompt_for, understand, understand_with_model, upset_hint, voice_style

MATCHER = IntentMatcher([IntentSpec("book_table", ("book a table", "a reservation for tonight"))], ["handoff"])


class AnsweringChat(ChatModel):
    provider, model = "scripted", "scripted-chat"

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.seen: list[ChatMessage] = []

    async def stream(
        self, messages: Sequence[ChatMessage], *, tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[ChatEvent]:
        self.seen = list(messages)
        yield TextDelta(self.answer)
        yield Usage(input_tokens=90, output_tokens=12)


def test_the_fast_tier_labels_a_turn_and_says_when_it_is_unsure():
    sure = understand("I need a human, this is ridiculous", MATCHER)
    assert (sure.emotion, sure.intent, sure.source) == ("angry", "handoff", RULES)
    assert sure.upset
    assert understand("Oh perfect, you lost my booking again", MATCHER).unsure


async def test_the_slow_tier_takes_the_models_labels_and_reports_its_tokens():
    chat = AnsweringChat('{"emotion": "angry", "intent": "book_table"}')
    fast = understand("Oh perfect, you lost my booking again", MATCHER)
    understood, use = await understand_with_model(chat, "Oh perfect, you lost my booking again", MATCHER, fast)
    assert (understood.emotion, understood.intent, understood.source) == ("angry", "book_table", "model")
    assert (use.provider, use.input_tokens, use.output_tokens) == ("scripted", 90, 12)
    assert "book_table" in chat.seen[0].content and "handoff" in chat.seen[0].content


async def test_a_model_answer_that_is_not_the_json_asked_for_keeps_the_fast_labels():
    fast = understand("Oh perfect, you lost my booking again", MATCHER)
    for answer in ("I think they are upset", '{"emotion": "livid", "intent": ""}', "[1, 2]"):
        understood, use = await understand_with_model(AnsweringChat(answer), "…", MATCHER, fast)
        assert (understood.emotion, understood.source, understood.unsure) == (fast.emotion, RULES, False), answer
        assert use.output_tokens == 12  # billed all the same
    # an intent the assistant does not have is dropped, the emotion kept
    understood, _ = await understand_with_model(
        AnsweringChat('{"emotion": "confused", "intent": "launch_rocket"}'), "…", MATCHER, fast
    )
    assert (understood.emotion, understood.intent) == ("confused", "")


async def test_the_simulated_model_answers_the_labelling_prompt():
    chat = SimulatedChat(SimulatedLatency(llm_first_token_ms=0, llm_tokens_per_s=10000))
    fast = understand("could I get a reservation for tonight", MATCHER)
    understood, use = await understand_with_model(chat, "could I get a reservation for tonight", MATCHER, fast)
    assert (understood.intent, understood.source) == ("book_table", "model")
    assert use.input_tokens > 0
    assert prompt_for(MATCHER).count("\n- ") == 2


def test_the_voice_calms_down_for_an_upset_visitor_and_slows_for_a_confused_one():
    calm, pace = voice_style("angry")
    assert "calm" in calm.lower() and pace < 1.0
    assert voice_style("confused")[1] < 1.0
    assert voice_style("neutral") == ("", 1.0)
    assert "handoff tool" in upset_hint("frustrated", can_hand_off=True)
    assert "handoff" not in upset_hint("frustrated", can_hand_off=False)
