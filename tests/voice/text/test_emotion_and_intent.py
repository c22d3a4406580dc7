"""The fast tier of a turn's emotion (lexicon, negation, intensifiers) and intent (example phrases)."""

import pytest

from voice.text.emotion import Emotion, feel
from voice.text.intent import IntentMatcher, IntentSpec


@pytest.mark.parametrize(
    ("text", "emotion"),
    [
        ("This is absolutely unacceptable", Emotion.ANGRY),
        ("what the hell is going on with my delivery", Emotion.ANGRY),
        ("I'm so fed up with this", Emotion.FRUSTRATED),
        ("I don't understand", Emotion.CONFUSED),
        ("Wonderful, I love that place", Emotion.POSITIVE),
        ("I'd like to book a table for four tonight", Emotion.NEUTRAL),
    ],
)
def test_clear_feelings_are_labelled_surely(text, emotion):
    feeling = feel(text)
    assert feeling.emotion == emotion
    assert feeling.unsure is False


def test_negation_turns_praise_into_a_complaint_and_a_complaint_into_none():
    assert feel("I'm not happy with the food").emotion == Emotion.FRUSTRATED
    assert feel("I'm happy with the food").emotion == Emotion.POSITIVE
    assert feel("I'm not angry, just asking").emotion != Emotion.ANGRY


def test_intensifiers_and_shouting_add_weight():
    assert feel("this is really annoying").score > feel("this is annoying").score
    assert feel("WHY does nobody answer the phone").emotion == Emotion.ANGRY


def test_sarcasm_is_left_to_the_slower_tier():
    feeling = feel("Oh perfect, you lost my booking again")
    assert feeling.unsure is True  # praise and complaint together: the chat model decides


@pytest.fixture
def matcher() -> IntentMatcher:
    intents = [
        IntentSpec("book_table", ("I'd like to book a table", "a reservation for tonight")),
        IntentSpec("order_status", ("where is my order", "my delivery hasn't arrived")),
    ]
    return IntentMatcher(intents, ["handoff", "business_hours"])


def test_a_configured_intent_matches_its_examples(matcher):
    found = matcher.match("Hello, I would like to book a table for two people tonight")
    assert found.name == "book_table"


def test_built_in_tools_are_intents(matcher):
    assert matcher.match("I need a human").name == "handoff"
    assert matcher.match("What are your opening hours on Saturday?").name == "business_hours"


def test_tools_the_assistant_does_not_have_are_not_intents(matcher):
    assert matcher.match("goodbye").name == ""  # end_conversation is not among this assistant's tools
    assert "end_conversation" not in matcher.names


def test_nothing_matches_small_talk(matcher):
    found = matcher.match("yes")
    assert (found.name, found.unsure) == ("", False)
