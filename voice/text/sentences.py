"""Cutting streamed reply text into speakable pieces for TTS."""

_TERMINAL = ".!?…؟।。！？｡"  # end a sentence
_CLAUSE = ",;:—、，；："  # end a clause once the piece is long enough
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
    """Collects streamed text deltas and returns each sentence or long clause once complete.

    The pieces depend only on the text, never on how it was chunked.
    """

    __slots__ = ("_buffer", "_scanned", "min_clause_chars")

    def __init__(self, min_clause_chars: int = 40) -> None:
        if min_clause_chars < 1:
            raise ValueError(f"min_clause_chars must be positive, got {min_clause_chars}")
        self.min_clause_chars = min_clause_chars
        self._buffer = ""
        self._scanned = 0  # leading characters of the buffer known not to end a piece

    def push(self, delta: str) -> list[str]:
        """Add text; return the pieces it completes (stripped, never empty)."""
        self._buffer += delta
        pieces: list[str] = []
        while (end := self._piece_end()) is not None:
            piece = self._buffer[:end].strip()
            if piece:
                pieces.append(piece)
            self._buffer = self._buffer[end:]
            self._scanned = 0
        return pieces

    def flush(self) -> list[str]:
        """Return whatever is left at the end of the reply."""
        rest = self._buffer.strip()
        self._buffer = ""
        self._scanned = 0
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
            return False  # 3.14, example.com, 1,000, 10:30
        if marks == ".":
            return _ends_sentence(text, start, end)
        if any(mark in _TERMINAL for mark in marks):
            return True
        return len(text[:end].strip()) >= self.min_clause_chars
