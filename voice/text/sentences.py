"""Cutting streamed reply text into speakable pieces for TTS.

The first piece of a reply is what the visitor waits for, so it leaves at the first natural break
that still sounds like speech: a sentence end, or a clause mark (comma, semicolon, colon, dash) once
the piece has at least three words and fifteen characters ("Sure, I can help with that," not
"Sure,"). Later pieces play while the next ones are synthesized, so they may be longer: a sentence, or
a clause of forty characters or more. That gives the voice more context and makes fewer requests.
This is the split most voice products make: a short opening fragment, then sentences (ElevenLabs'
growing ``chunk_length_schedule``, stream2sentence's ``minimum_first_fragment_length``, Vapi's
punctuation boundaries with a minimum length).
"""

import re

_TERMINAL = ".!?…؟।。！？｡"  # end a sentence
_CLAUSE = ",;:—–-、，；："  # end a clause once the piece is long enough
_JOINERS = frozenset("-–")  # a dash only when spaced: "well-known", "10–12", "pre- and post-war" are no break
_MARKS = _TERMINAL + _CLAUSE
_UNSPACED = "。！？｡、，；："  # CJK marks: no whitespace needed after them
_CLOSERS = "\"'”’»)]}」』"
_OPENERS = "\"'“‘«([{¿¡「『"

# Words before a "." that never end a sentence.
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "prof", "sr", "jr", "vs", "e.g", "i.e", "cf"})
# Words before a "." that end a sentence only if a capital letter follows ("at 9 a.m. See you").
_MAYBE_FINAL = frozenset({"etc", "a.m", "p.m"})
# Words before a "." that are an abbreviation if a digit follows ("No. 5", but "No. Sorry").
_BEFORE_NUMBER = frozenset({"no", "nr"})


# Characters that are a syllable each (Chinese, Japanese, Korean): a word for counting, and as long as
# three Latin letters for measuring.
_WIDE = re.compile(r"[\u1100-\u11ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_WIDE_WEIGHT = 3


def _size(piece: str) -> tuple[int, int]:
    """(words, characters) of a piece: a word is a run without spaces holding a letter or digit, and each
    wide character is a word of its own, counted as three characters."""
    wide = len(_WIDE.findall(piece))
    spaced = _WIDE.sub(" ", piece) if wide else piece
    words = sum(1 for token in spaced.split() if any(char.isalnum() for char in token))
    return words + wide, len(piece) + (_WIDE_WEIGHT - 1) * wide


def _is_initials(word: str) -> bool:
    """ "J", "U.S", "J.R.R": capital letters, or single letters joined by dots."""
    parts = word.split(".")
    return all(len(part) == 1 and part.isalpha() for part in parts) and (len(parts) > 1 or word.isupper())


def _ends_sentence(text: str, dot: int, end: int) -> bool | None:
    """Whether the "." at text[dot] ends a sentence; None until the next word shows."""
    words = text[:dot].rsplit(None, 1)
    word = words[-1].lstrip(_OPENERS) if words else ""
    key = word.lower()
    if key in _MAYBE_FINAL or key in _BEFORE_NUMBER:
        following = text[end:].lstrip()
        if not following:
            return None
        return following[0].isupper() if key in _MAYBE_FINAL else not following[0].isdigit()
    return key not in _ABBREVIATIONS and not _is_initials(word)


class SentenceAggregator:
    """Collects streamed text deltas and returns each sentence or long-enough clause once complete.

    The first piece (of a reply, or after a :meth:`flush`) may end at a clause of
    ``first_clause_words`` words and ``first_clause_chars`` characters; later clauses need
    ``min_clause_chars``. Sentences end a piece whatever their length. The pieces depend only on the
    text, never on how it was chunked.
    """

    __slots__ = ("_buffer", "_first", "_scanned", "first_clause_chars", "first_clause_words", "min_clause_chars")

    def __init__(
        self, min_clause_chars: int = 40, *, first_clause_chars: int = 15, first_clause_words: int = 3
    ) -> None:
        for name, value in (
            ("min_clause_chars", min_clause_chars),
            ("first_clause_chars", first_clause_chars),
            ("first_clause_words", first_clause_words),
        ):
            if value < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        self.min_clause_chars = min_clause_chars
        self.first_clause_chars = first_clause_chars
        self.first_clause_words = first_clause_words
        self._buffer = ""
        self._first = True  # no piece returned yet since the start or the last flush
        self._scanned = 0  # leading characters of the buffer known not to end a piece

    def push(self, delta: str) -> list[str]:
        """Add text; return the pieces it completes (stripped, never empty)."""
        self._buffer += delta
        pieces: list[str] = []
        while (end := self._piece_end()) is not None:
            piece = self._buffer[:end].strip()
            if piece:
                pieces.append(piece)
                self._first = False
            self._buffer = self._buffer[end:]
            self._scanned = 0
        return pieces

    def flush(self) -> list[str]:
        """Return whatever is left at the end of the reply."""
        rest = self._buffer.strip()
        self._buffer = ""
        self._scanned = 0
        self._first = True
        return [rest] if rest else []

    def _piece_end(self) -> int | None:
        """Index just past the first complete piece, or None until more text arrives."""
        text = self._buffer
        size = len(text)
        i = self._scanned
        while i < size:
            char = text[i]
            if char == "\n":
                return i + 1
            if char not in _MARKS:
                i += 1
                continue
            marks_end = i + 1
            while marks_end < size and text[marks_end] in _MARKS:
                marks_end += 1
            end = marks_end
            while end < size and text[end] in _CLOSERS:
                end += 1
            split = self._splits(text, i, marks_end, end)
            if split is None:
                self._scanned = i
                return None
            if split:
                return end
            i = end
        self._scanned = size
        return None

    def _splits(self, text: str, start: int, marks_end: int, end: int) -> bool | None:
        """Whether a piece ends after marks text[start:marks_end] and closers up to end."""
        if end == len(text):
            return None  # more marks or closers may follow
        marks = text[start:marks_end]
        if not text[end].isspace() and not any(mark in _UNSPACED for mark in marks):
            return False  # 3.14, example.com, 1,000, 10:30, well-known
        if marks == ".":
            return _ends_sentence(text, start, end)
        if marks[-1] not in _CLAUSE:
            return True  # "?", "!", "…", "?!", "...": a sentence ends
        # A clause ends here ("e.g.," and "Yes...," too: the comma decides) if the piece is long enough,
        # but not between numbers ("May 5, 2025", "5 - 10", "1, 2, 3") ...
        if text[:start].rstrip()[-1:].isdigit():
            following = text[end:].lstrip()
            if not following:
                return None
            if following[0].isdigit():
                return False
        # ... and a hyphen or en dash only when spaced ("well-known", "pre- and post-war" are no break).
        if set(marks) <= _JOINERS and (start == 0 or not text[start - 1].isspace()):
            return False
        words, chars = _size(text[:end].strip())
        if self._first:
            return words >= self.first_clause_words and chars >= self.first_clause_chars
        return chars >= self.min_clause_chars
