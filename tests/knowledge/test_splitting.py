"""Passages sized for speech: 40–120 words, whole sentences, each with its heading path."""

from __future__ import annotations

import re

from knowledge.extraction import Section
from knowledge.splitting import MAX_WORDS, MIN_WORDS, count_words, sentences, split, split_section


def _sentence(number: int, words: int = 12) -> str:
    return f"Sentence {number} " + " ".join(["word"] * (words - 3)) + " end."


def test_sentences_end_at_punctuation_but_not_at_abbreviations_or_decimals():
    text = 'We open at 11.30 daily. Ask e.g. Dr. Smith! Is it "good?" Yes. Prices start at 3.50 euros'

    assert sentences(text) == [
        "We open at 11.30 daily.",
        "Ask e.g. Dr. Smith!",
        'Is it "good?"',
        "Yes.",
        "Prices start at 3.50 euros.",
    ]


def test_a_long_section_becomes_passages_of_40_to_120_words_on_sentence_boundaries():
    section = Section(("Guide", "Menu"), [" ".join(_sentence(n) for n in range(40))])

    passages = split_section(section)

    assert len(passages) > 3
    for passage in passages:
        assert MIN_WORDS <= passage.words <= MAX_WORDS, passage
        assert passage.heading == "Guide › Menu"
        assert passage.text.startswith("Sentence ") and passage.text.endswith("end.")
    text = " ".join(passage.text for passage in passages)
    assert text == " ".join(_sentence(n) for n in range(40)), "nothing lost, nothing repeated, order kept"


def test_a_short_tail_joins_the_passage_before_it():
    section = Section((), [" ".join(_sentence(n, 10) for n in range(9))])  # 90 words

    passages = split_section(section)

    assert [p.words for p in passages] == [90]


def test_list_items_become_sentences():
    passages = split([Section(("Menu",), ["Lentil curry", "Falafel wrap", "Salad."])])

    assert passages[0].text == "Lentil curry. Falafel wrap. Salad."


def test_a_huge_sentence_is_cut_at_commas_and_no_piece_exceeds_the_maximum():
    clause = " ".join(["dish"] * 30)
    huge = ", ".join([clause] * 10) + "."  # 300 words, one sentence

    passages = split_section(Section(("Menu",), ["Short one first.", huge, "A short one after."]))

    assert passages[0].text == "Short one first."
    assert all(count_words(p.text) <= MAX_WORDS for p in passages)
    assert passages[-1].text.endswith("dish. A short one after."), "a short tail joins the piece before it"
    assert sum(count_words(p.text) for p in passages) == 3 + 300 + 4


def test_a_sentence_without_any_punctuation_is_cut_every_max_words():
    passages = split_section(Section((), [" ".join(["word"] * 300)]))

    assert [p.words for p in passages] == [120, 120, 60]


def test_sections_never_share_a_passage():
    passages = split([Section(("Hours",), ["Open at nine."]), Section(("Parking",), ["Park behind."])])

    assert [(p.heading, p.text) for p in passages] == [("Hours", "Open at nine."), ("Parking", "Park behind.")]


def test_every_passage_ends_a_sentence():
    text = " ".join(f"This is sentence number {n} about the menu and the kitchen." for n in range(60))

    for passage in split([Section(("A",), [text])]):
        assert re.search(r"[.!?]$", passage.text)
