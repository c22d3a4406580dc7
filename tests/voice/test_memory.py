"""Memory: what the model is shown, the running summary, and the visitor's profile."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence

from voice.memory import Profile, compose, learn_profile, profile_from_rules, summarize, welcome_back
from voice.providers.base import ChatMessage, ChatModel, TextDelta, ToolSpec
from voice.providers.simulated import SimulatedChat, SimulatedLatency

FAST = SimulatedLatency(llm_first_token_ms=0, llm_tokens_per_s=10_000)


def _turns(*pairs: tuple[str, str]) -> list[ChatMessage]:
    return [ChatMessage(role=role, content=text) for role, text in pairs]


class Answering(ChatModel):
    provider, model = "test", "test"

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.seen: list[Sequence[ChatMessage]] = []

    async def stream(self, messages: Sequence[ChatMessage], *, tools: Sequence[ToolSpec] = ()) -> AsyncIterator:
        self.seen.append(messages)
        yield TextDelta(self.answer)


def test_the_model_sees_instructions_profile_summary_and_only_the_recent_turns():
    history = _turns(*[("user" if i % 2 == 0 else "assistant", f"message {i}") for i in range(10)])
    messages = compose(
        "Be brief.",
        history,
        recent_turns=4,
        summarized=6,
        summary="The visitor asked about tables.",
        profile=Profile(name="Anna", preferences=["vegetarian"]),
        context="It is now Monday.",
    )
    assert [m.content for m in messages[1:]] == ["message 6", "message 7", "message 8", "message 9"]
    system = messages[0].content
    assert system.startswith("Be brief.\n\nIt is now Monday.")
    assert "Name: Anna. Preferences: vegetarian." in system
    assert "Summary of the earlier part of this conversation: The visitor asked about tables." in system


def test_a_returning_visitor_is_greeted_with_what_is_remembered():
    profile = Profile(name="Anna", open_requests=["book a table for four on Friday"])
    greeting = welcome_back(profile, "Hello! Welcome to Bistro Aura. How can I help you today?")
    assert (
        greeting
        == "Welcome back, Anna! Last time you asked about book a table for four on Friday. How can I help you today?"
    )
    assert welcome_back(Profile(), "Hello!") == "Hello!"


def test_the_rules_find_name_preferences_and_open_requests():
    turns = _turns(
        ("user", "Hi, my name is anna and I'm allergic to peanuts."),
        ("assistant", "Nice to meet you, Anna."),
        ("user", "I would like to book a table for four on Friday."),
        ("assistant", "For what time?"),
        ("user", "I need a parking spot too."),
        ("assistant", "Done, your parking spot is booked."),
    )
    profile = profile_from_rules(Profile(preferences=["likes window seats"]), turns)
    assert profile.name == "Anna"
    assert profile.preferences == ["likes window seats", "allergic to peanuts"]
    assert profile.open_requests == ["book a table for four on Friday"]  # the parking spot was booked


async def test_the_simulated_model_summarises_and_learns_the_profile_deterministically():
    chat = SimulatedChat(FAST)
    summary, use = await summarize(chat, "", _turns(("user", "I need a table."), ("assistant", "For how many?")))
    assert summary == "The visitor said: I need a table.."
    assert (use.provider, use.model) == ("simulated", "simulated-chat") and use.input_tokens and use.output_tokens
    longer, _ = await summarize(chat, summary, _turns(("user", "For four people.")))
    assert longer.startswith(summary) and longer.endswith("For four people..")

    profile, _ = await learn_profile(chat, Profile(), _turns(("user", "Call me Ben. I prefer tables outside.")))
    assert profile == Profile(name="Ben", preferences=["prefer tables outside"], open_requests=[])


async def test_a_model_profile_is_used_when_it_is_the_asked_for_json_and_the_rules_otherwise():
    answer = json.dumps({"name": "Chloé", "preferences": ["quiet table"], "open_requests": ["gift card"]})
    model = Answering(f"Here you go:\n{answer}")
    profile, _ = await learn_profile(model, Profile(), _turns(("user", "hello")))
    assert profile == Profile(name="Chloé", preferences=["quiet table"], open_requests=["gift card"])
    assert "Latest conversation:\nVisitor: hello" in model.seen[0][1].content

    profile, _ = await learn_profile(Answering("You said: something"), Profile(name="Dan"), _turns(("user", "hi")))
    assert profile == Profile(name="Dan")  # not JSON: the rules kept what was known


def test_messages_the_summary_does_not_cover_yet_are_still_shown():
    history = _turns(*[("user" if i % 2 == 0 else "assistant", f"message {i}") for i in range(15)])
    messages = compose("Be brief.", history, recent_turns=12, summarized=0)
    assert messages[1].content == "message 0", "nothing falls between summary and window"
    messages = compose("Be brief.", history, recent_turns=12, summarized=2, summary="Earlier: 0 and 1.")
    assert messages[1].content == "message 2"
    messages = compose("Be brief.", history, recent_turns=4, summarized=11, summary="Earlier.")
    assert [m.content for m in messages[1:]] == ["message 11", "message 12", "message 13", "message 14"]
