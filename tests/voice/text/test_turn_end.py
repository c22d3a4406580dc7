"""The rule tier of semantic end of turn: what sounds unfinished, complete, or neither."""

import pytest

from voice.text.turn_end import Verdict, judge, silence_for


@pytest.mark.parametrize(
    "words",
    [
        "i'd like to book a table for",  # preposition
        "i'd like to book a table for um",  # filler
        "can i get a pizza and",  # conjunction
        "i'm calling about the",  # article
        "my name is",  # "is" needs what follows
        "my number is oh seven seven",  # a number being read out
        "it's 0 7 7 0 0",
        "that's s a",  # a name being spelled
        "hmm let me think",  # thinking aloud
        "I'd like to order a...",  # the speech-to-text model heard it trail off
        "i need bread, milk,",
    ],
)
def test_unfinished_words_wait_longer(words):
    assert judge(words) == Verdict.INCOMPLETE


@pytest.mark.parametrize(
    "words",
    [
        "what are your opening hours on saturday",  # a question, without a question mark
        "Are you open on Sundays?",
        "yes",
        "no thanks",
        "thank you",  # a short answer, although "you" alone would sound unfinished
        "I'd like a pepperoni pizza.",
        "could you tell me about your delivery options",
    ],
)
def test_questions_and_short_answers_are_complete(words):
    assert judge(words) == Verdict.COMPLETE


@pytest.mark.parametrize("words", ["i need a table", "it's 42 baker street", "we are six", "   "])
def test_plain_statements_are_unsure(words):
    # "i need a table" may go on ("for four people"): the assistant's usual silence decides
    assert judge(words) == Verdict.UNSURE


def test_known_mistakes_stay_visible():
    # the rules take a final "it" for a sentence's subject: a complete complaint waits longer
    assert judge("this is the third time i'm calling and nobody has fixed it") == Verdict.INCOMPLETE
    # and a final number in an order number is taken for more digits to come
    assert judge("the order number is 5 5 3 1") == Verdict.INCOMPLETE


def test_each_verdict_maps_to_its_silence():
    settings = {"min_silence_ms": 250, "end_silence_ms": 600, "max_silence_ms": 2000}
    assert silence_for(Verdict.COMPLETE, **settings) == 250
    assert silence_for(Verdict.UNSURE, **settings) == 600
    assert silence_for(Verdict.INCOMPLETE, **settings) == 2000


@pytest.mark.parametrize(
    "words",
    [
        # review 16, finding 1: a punctuating transcriber closes these with "?"; their last word is a pronoun,
        # an auxiliary or a stranded preposition, which must not make them sound unfinished
        "Where are you?",
        "Could you repeat that?",
        "How much is it?",
        "Is that it?",
        "Who am I speaking to?",
        "What is the deposit for?",
        "Do you know?",
    ],
)
def test_punctuated_questions_ending_in_pronouns_or_prepositions_are_complete(words):
    assert judge(words) == Verdict.COMPLETE


@pytest.mark.parametrize("words", ["That is all, thank you.", "Yes, I would like that.", "I don't think so."])
def test_punctuated_statements_ending_in_pronouns_do_not_wait_longer(words):
    assert judge(words) != Verdict.INCOMPLETE


@pytest.mark.parametrize(
    "words",
    [
        "I'll have the soup and.",  # a conjunction cannot close a sentence, whatever the punctuation
        "I'm calling about the.",  # nor an article
        "We'd like, um.",  # nor a filler
        "Is it between?",  # nor a preposition that cannot be stranded
        "I'd like to book a table for,",
    ],
)
def test_punctuated_but_unfinished_words_still_wait_longer(words):
    assert judge(words) == Verdict.INCOMPLETE


def test_a_full_stop_after_an_auxiliary_is_left_to_the_usual_silence():
    # "My name is." (a transcriber's full stop at a pause) and "Yes, I can." look the same to the rules
    assert judge("My name is.") == Verdict.UNSURE
    assert judge("Yes, I can.") == Verdict.UNSURE
