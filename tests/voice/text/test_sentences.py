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
        ("It costs 1,000 dollars: 10:30 is the time.", ["It costs 1,000 dollars: 10:30 is the time."]),
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
