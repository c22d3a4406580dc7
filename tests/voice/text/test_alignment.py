import pytest

from voice.text.alignment import SpeechTimeline, SpokenSegment, heard_text

REPLY = [
    SpokenSegment("Hello there, how are you today?", 0.0, 1000.0),
    SpokenSegment("We open at nine.", 1000.0, 800.0),
    SpokenSegment("See you soon!", 1800.0, 600.0),
]


@pytest.mark.parametrize("played_ms", [0.0, -5.0])
def test_nothing_is_heard_before_playback(played_ms: float) -> None:
    assert heard_text(REPLY, played_ms) == ""


def test_mid_segment_gives_the_words_within_the_played_share() -> None:
    # "Hello there, how are you today?" has 31 characters: half of it ends at 15.5,
    # after "there," (ends at 12) and before "how" ends (16)
    assert heard_text(REPLY, 500.0) == "Hello there,"
    assert heard_text(REPLY, 520.0) == "Hello there, how"
    assert heard_text(REPLY, 1.0) == ""


@pytest.mark.parametrize(
    ("played_ms", "expected"),
    [
        (1000.0, "Hello there, how are you today?"),
        (1800.0, "Hello there, how are you today? We open at nine."),
        (2400.0, "Hello there, how are you today? We open at nine. See you soon!"),
    ],
)
def test_a_segment_is_heard_in_full_exactly_when_it_ends(played_ms: float, expected: str) -> None:
    assert heard_text(REPLY, played_ms) == expected
    assert heard_text(REPLY, played_ms - 0.001) != expected


def test_playing_past_the_end_hears_everything() -> None:
    assert heard_text(REPLY, 99_999.0) == "Hello there, how are you today? We open at nine. See you soon!"


def test_many_segments_cut_at_a_word_boundary_and_grow_with_playback() -> None:
    # given 50 one-word segments of 100 ms each
    segments = [SpokenSegment(f"word{i}", i * 100.0, 100.0) for i in range(50)]
    all_words = [segment.text for segment in segments]

    # when playback stops halfway through segment 25, and at every 7 ms
    halfway = heard_text(segments, 2550.0)
    sweep = [heard_text(segments, float(ms)).split() for ms in range(0, 5100, 7)]

    # then only whole words are heard, in order, and never fewer as playback goes on
    assert halfway == " ".join(all_words[:25])
    assert all(words == all_words[: len(words)] for words in sweep)
    assert [len(words) for words in sweep] == sorted(len(words) for words in sweep)


def test_whitespace_is_normalised_to_single_spaces() -> None:
    segments = [SpokenSegment("  Hello\n there  ", 0.0, 100.0), SpokenSegment("\tfriend ", 100.0, 100.0)]
    assert heard_text(segments, 500.0) == "Hello there friend"


def test_unicode_is_counted_by_characters_and_cut_between_words() -> None:
    # "Grüße aus München 🎉" has 19 characters; 60% is 11.4, after "aus" ends (9)
    segments = [SpokenSegment("Grüße aus München 🎉", 0.0, 1000.0), SpokenSegment("你好世界", 1000.0, 400.0)]

    assert heard_text(segments, 600.0) == "Grüße aus"
    assert heard_text(segments, 950.0) == "Grüße aus München"
    assert heard_text(segments, 1399.0) == "Grüße aus München 🎉"  # unspaced text is one word
    assert heard_text(segments, 1400.0) == "Grüße aus München 🎉 你好世界"


def test_timeline_times_segments_by_their_audio() -> None:
    # given a reply whose TTS audio arrives for two pieces of text, the first in two chunks
    timeline = SpeechTimeline()
    timeline.add("Hello there.", audio_bytes=16_000, sample_rate=16_000)  # 500 ms
    timeline.extend_audio(16_000)  # + 500 ms
    timeline.add("We open at nine.", audio_bytes=48_000, sample_rate=24_000)  # 1000 ms

    # then segments lie end to end on the audio timeline
    assert [(s.start_ms, s.duration_ms) for s in timeline.segments] == [(0.0, 1000.0), (1000.0, 1000.0)]
    assert timeline.total_ms == 2000.0
    assert timeline.text == "Hello there. We open at nine."
    assert timeline.heard(1000.0) == "Hello there."
    assert timeline.heard(1500.0) == "Hello there. We open"
    assert timeline.heard(5000.0) == timeline.text


def test_empty_timeline() -> None:
    timeline = SpeechTimeline()

    assert timeline.total_ms == 0.0
    assert timeline.text == ""
    assert timeline.heard(1000.0) == ""
    with pytest.raises(ValueError, match="add"):
        timeline.extend_audio(640)


def test_timeline_rejects_a_non_positive_sample_rate() -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        SpeechTimeline().add("Hi.", audio_bytes=640, sample_rate=0)
