import random

import pytest

from voice.text.sentences import SentenceAggregator

STREAMS = [
    "Hello there. How are you today? I'm fine!! Thanks...  Bye",
    "Mr. Smith paid 3.14 dollars at 10.30 a.m. Then he left. Visit example.com or mail info@example.com. OK?",
    'She said "Stop!" and left. (Really.) Yes?! No… Maybe.\nNext line\n\nLast line',
    "If you want to book a table for tonight, I can help with that: tell me the time, and the number of people.",
    "Dr. J. K. Rowling lives on Main St. in the U.S. now, e.g. in summer, i.e. June, etc. and so on.",
    "We open at 9 a.m. See you then. Apples, pears, etc. are fine. No. 5 is taken. No. Sorry about that.",
    "¿Qué tal? Muy bien. Das kostet 3,50 € pro Stück. Grüße aus München!",
    "你好。我很好！谢谢。",
    "Sure, I can help with that, just tell me when: 9:30 or 10:15, for 1,000 people - or 2.5 hours.",
    "Yes, sure, of course, e.g., tomorrow; a well-known pre- and post-theatre menu for 5 - 10 people – fine.",
    "谢谢你的耐心，我们马上开始，好吗？好的，没问题。",
]

# Tokens with marks inside (never cut) and around them, for random texts.
VOCABULARY = [
    *["I", "we", "can", "help", "book", "a", "table", "the", "time", "for", "you", "and", "then"],
    *["Sure,", "Yes,", "well,", "tonight,", "today;", "note:", "—", "-", "–", "e.g.,", "i.e.", "Dr.", "Mr.", "etc."],
    *["1,000", "9:30", "3.14", "10–12", "well-known", "pre-", "example.com", "U.S.", "a.m.", "No.", "5", "5,", "7:"],
    *["Fine.", "Really?!", "Wow!", "So...", '"Go."', "(yes),", "OK?"],
]


def pieces_of(chunks: list[str], min_clause_chars: int = 40) -> list[str]:
    aggregator = SentenceAggregator(min_clause_chars)
    pieces = [piece for chunk in chunks for piece in aggregator.push(chunk)]
    return pieces + aggregator.flush()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello there. How are you? Fine!", ["Hello there.", "How are you?", "Fine!"]),
        ("Really?! Yes... Sure… Done.", ["Really?!", "Yes...", "Sure…", "Done."]),
        ('He said "Go." Then (he left.) Bye', ['He said "Go."', "Then (he left.)", "Bye"]),
        ("Pi is 3.14 today. We meet at 10.30 then.", ["Pi is 3.14 today.", "We meet at 10.30 then."]),
        ("Mr. Smith and Mrs. Jones met Dr. Who.", ["Mr. Smith and Mrs. Jones met Dr. Who."]),
        ("Ms. Lee lives on Baker St. near us.", ["Ms. Lee lives on Baker St. near us."]),
        ("Take e.g. apples or i.e. red ones vs. pears.", ["Take e.g. apples or i.e. red ones vs. pears."]),
        (
            "Written by J. R. R. Tolkien and J.K. Rowling in the U.S. today.",
            ["Written by J. R. R. Tolkien and J.K. Rowling in the U.S. today."],
        ),
        (
            "Go to example.com or www.shop.example.org now. Or mail me@example.com please.",
            ["Go to example.com or www.shop.example.org now.", "Or mail me@example.com please."],
        ),
        ("Open at 9 a.m. and closed at 5 p.m. on Sunday.", ["Open at 9 a.m. and closed at 5 p.m. on Sunday."]),
        ("Open at 9 a.m. See you.", ["Open at 9 a.m.", "See you."]),
        ("Apples, pears, etc. are fine.", ["Apples, pears, etc. are fine."]),
        ("Table No. 5 is free. No. It is not.", ["Table No. 5 is free.", "No.", "It is not."]),
        ("First line\nSecond line\n\n\nThird", ["First line", "Second line", "Third"]),
        ("Yes, sure, of course.", ["Yes, sure, of course."]),
        ("It costs 1,000 dollars: 10:30 is the time.", ["It costs 1,000 dollars:", "10:30 is the time."]),
        ("Costs 1,000: 10:30, fine.", ["Costs 1,000: 10:30,", "fine."]),
        (
            "Well, if you would like to book a table for tonight, I can help; just tell me the time.",
            ["Well, if you would like to book a table for tonight,", "I can help; just tell me the time."],
        ),
        (
            "Our kitchen is open every single day of the week — except on public holidays.",
            ["Our kitchen is open every single day of the week —", "except on public holidays."],
        ),
        ("你好。我很好！谢谢", ["你好。", "我很好！", "谢谢"]),
        ("¿Qué tal?\u00a0Muy bien.", ["¿Qué tal?", "Muy bien."]),
        ("   \n  ", []),
    ],
)
def test_splits_into_speakable_pieces(text: str, expected: list[str]) -> None:
    assert pieces_of([text]) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the first piece leaves at a clause of three words and fifteen characters
        (
            "Sure, I can help with that, just tell me when you would like to come.",
            ["Sure, I can help with that,", "just tell me when you would like to come."],
        ),
        ("Yes, sure, of course, we are open.", ["Yes, sure, of course,", "we are open."]),
        ("Hi, Tom, how are you?", ["Hi, Tom, how are you?"]),  # two words: too short to sound right
        ("I am in, so we go now.", ["I am in, so we go now."]),  # three words but eight characters
        ("Our kitchen is open daily - except on holidays.", ["Our kitchen is open daily -", "except on holidays."]),
        ("Our kitchen is open daily – except on holidays.", ["Our kitchen is open daily –", "except on holidays."]),
        # never inside a number, a decimal, an abbreviation or a hyphenated word
        ("We have 1,000 seats at 9:30, and 2.5 hours.", ["We have 1,000 seats at 9:30,", "and 2.5 hours."]),
        ("We have seats for 5 - 10 people at 9 a.m. today.", ["We have seats for 5 - 10 people at 9 a.m. today."]),
        ("Dr. Smith and Mr. Jones, i.e. two of us.", ["Dr. Smith and Mr. Jones,", "i.e. two of us."]),
        (
            "A well-known pre- and post-theatre menu, open late.",
            ["A well-known pre- and post-theatre menu,", "open late."],
        ),
        ("Open 10–12 and 18–22 each day.", ["Open 10–12 and 18–22 each day."]),
        ("Open Monday, May 5, 2025, at noon.", ["Open Monday, May 5, 2025,", "at noon."]),
        ("Pick any of tables 12, 14, 16 or 18, please.", ["Pick any of tables 12, 14, 16 or 18,", "please."]),
        # a syllable-per-character script: each character is a word, as long as three letters
        ("谢谢你的耐心，我们马上开始。", ["谢谢你的耐心，", "我们马上开始。"]),
        ("好的，我们开始吧。", ["好的，我们开始吧。"]),
        # later pieces: a sentence, or a clause of forty characters
        ("Sure. I can help with that, just tell me when.", ["Sure.", "I can help with that, just tell me when."]),
        (
            "Hello there. Take e.g., apples, or pears from the market today.",
            ["Hello there.", "Take e.g., apples, or pears from the market today."],
        ),
        (
            "Sure, I can help with that, and with anything else you need tonight, just ask.",
            ["Sure, I can help with that,", "and with anything else you need tonight,", "just ask."],
        ),
    ],
)
def test_the_first_piece_leaves_at_the_first_natural_break(text: str, expected: list[str]) -> None:
    assert pieces_of([text]) == expected


def test_the_first_piece_is_ready_as_soon_as_its_clause_is() -> None:
    aggregator = SentenceAggregator()

    assert aggregator.push("Of course, I can") == []
    assert aggregator.push(" book that,") == []  # a comma may still be followed by a digit: "that,000"
    assert aggregator.push(" and") == ["Of course, I can book that,"]
    assert aggregator.push(" I will, gladly,") == []  # later clauses wait for forty characters
    assert aggregator.flush() == ["and I will, gladly,"]


def test_after_a_flush_the_next_piece_is_a_first_piece_again() -> None:
    # a reply that called a tool: what follows the tool's wait is awaited like a first piece
    aggregator = SentenceAggregator()

    assert aggregator.push("Okay. Let me look that up, ") == ["Okay."]
    assert aggregator.flush() == ["Let me look that up,"]
    assert aggregator.push("I found two tables, ") == ["I found two tables,"]


def test_the_first_clause_rule_is_configurable() -> None:
    assert pieces_of(["Sure, I can help with that, gladly."]) == ["Sure, I can help with that,", "gladly."]
    strict = SentenceAggregator(first_clause_chars=40, first_clause_words=3)
    assert strict.push("Sure, I can help with that, gladly. ") == ["Sure, I can help with that, gladly."]
    for name in ("first_clause_chars", "first_clause_words"):
        with pytest.raises(ValueError, match=name):
            SentenceAggregator(**{name: 0})


def random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(1, 40))) for _ in range(count)]


@pytest.mark.parametrize("text", random_texts(40, seed=25))
def test_random_texts_are_cut_only_between_words_and_alike_however_they_stream(text: str) -> None:
    whole = pieces_of([text])

    # no cut inside a token: "1,000", "9:30", "3.14", "e.g.,", "well-known" stay whole
    assert [token for piece in whole for token in piece.split()] == text.split()
    rng = random.Random(text)
    for _ in range(20):
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(1, 8))))
        chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        assert pieces_of(chunks) == whole, chunks
    assert pieces_of(list(text)) == whole


@pytest.mark.parametrize("text", STREAMS)
def test_pieces_do_not_depend_on_where_the_stream_was_split(text: str) -> None:
    # given the pieces of the whole text in one delta
    whole = pieces_of([text])

    # when the same text arrives split at every position, char by char, and in random chunks
    rng = random.Random(7)
    chunkings = [[text[:k], text[k:]] for k in range(len(text) + 1)]
    chunkings.append(list(text))
    for _ in range(50):
        cuts = sorted(rng.sample(range(len(text) + 1), 5))
        chunkings.append([text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)])

    # then the pieces are always the same, stripped and never empty
    for chunks in chunkings:
        assert pieces_of(chunks) == whole, chunks
    assert all(piece and piece == piece.strip() for piece in whole)
    assert "".join("".join(whole).split()) == "".join(text.split())  # nothing lost


def test_a_sentence_is_released_as_soon_as_whitespace_follows_it() -> None:
    aggregator = SentenceAggregator()

    assert aggregator.push("Sure, I can help") == []
    assert aggregator.push(" with that.") == []
    assert aggregator.push(" What") == ["Sure, I can help with that."]
    assert aggregator.push(" time?") == []
    assert aggregator.flush() == ["What time?"]


def test_a_long_clause_is_released_at_its_comma() -> None:
    aggregator = SentenceAggregator(min_clause_chars=20)

    assert aggregator.push("Hi, ") == []
    assert aggregator.push("if you tell me the time, ") == ["Hi, if you tell me the time,"]
    assert aggregator.flush() == []


def test_flush_empties_the_aggregator_for_the_next_reply() -> None:
    aggregator = SentenceAggregator()
    aggregator.push("Unfinished thought")

    assert aggregator.flush() == ["Unfinished thought"]
    assert aggregator.flush() == []
    assert aggregator.push("Next reply. ") == ["Next reply."]


def test_min_clause_chars_must_be_positive() -> None:
    with pytest.raises(ValueError, match="min_clause_chars"):
        SentenceAggregator(min_clause_chars=0)
