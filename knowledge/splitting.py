"""Cut sections into passages sized for speech: about 40–120 words, whole sentences, each with its
heading path so that it stands alone when the assistant reads it. Pure functions, no database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from knowledge.extraction import Section

MIN_WORDS = 40
TARGET_WORDS = 80
MAX_WORDS = 120
HEADING_SEPARATOR = " › "

# A sentence ends at . ! ? … (and closing quotes or brackets) followed by white space and what can
# start a sentence. Abbreviations and initials ("e.g. ", "Dr. Smith", "J. Doe") do not end one.
_END = re.compile(r"""(?<=[.!?…])(["'”’)\]]*)\s+(?=["'“‘(\[]?[A-Z0-9À-ÖØ-Þ¿¡])""")
_ABBREVIATIONS = {
    "e.g.", "i.e.", "etc.", "vs.", "mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "no.", "approx.", "incl.",
    "jan.", "feb.", "mar.", "apr.", "jun.", "jul.", "aug.", "sep.", "sept.", "oct.", "nov.", "dec.", "mt.", "ft.",
}  # fmt: skip
_CLAUSE = re.compile(r"(?<=[,;:])\s+")


@dataclass(frozen=True)
class PassageText:
    heading: str
    text: str

    @property
    def words(self) -> int:
        return count_words(self.text)


def count_words(text: str) -> int:
    return len(text.split())


def sentences(block: str) -> list[str]:
    """A paragraph or list item as sentences; one without final punctuation gets a full stop."""
    parts: list[str] = []
    start = 0
    for match in _END.finditer(block):
        candidate = block[start : match.end(1)].strip()
        last_word = candidate.rsplit(None, 1)[-1].lower() if candidate else ""
        if last_word in _ABBREVIATIONS or re.fullmatch(r"[a-z]\.", last_word):
            continue
        parts.append(candidate)
        start = match.end()
    parts.append(block[start:].strip())
    parts = [p for p in parts if p]
    if parts and not re.search(r"""[.!?…:]["'”’)\]]*$""", parts[-1]):
        parts[-1] += "."
    return parts


def _pieces_of_long_sentence(sentence: str) -> Iterator[str]:
    """A sentence longer than MAX_WORDS: cut at commas and semicolons, else every MAX_WORDS words."""
    current: list[str] = []
    for clause in _CLAUSE.split(sentence):
        words = clause.split()
        if count_words(" ".join(current)) + len(words) > MAX_WORDS and current:
            yield " ".join(current)
            current = []
        while len(words) > MAX_WORDS:
            yield " ".join(words[:MAX_WORDS])
            words = words[MAX_WORDS:]
        current.extend(words)
    if current:
        yield " ".join(current)


def split_section(section: Section) -> list[PassageText]:
    heading = HEADING_SEPARATOR.join(section.headings)
    passages: list[list[str]] = []
    current: list[str] = []
    size = 0

    def flush() -> None:
        nonlocal current, size
        if current:
            passages.append(current)
        current, size = [], 0

    for block in section.blocks:
        for sentence in sentences(block):
            words = count_words(sentence)
            if words > MAX_WORDS:
                flush()
                passages.extend([piece] for piece in _pieces_of_long_sentence(sentence))
                continue
            if size + words > MAX_WORDS:
                flush()
            current.append(sentence)
            size += words
            if size >= TARGET_WORDS:
                flush()
    flush()
    # A short tail joins the passage before it when both fit in one.
    if len(passages) >= 2:
        tail, before = passages[-1], passages[-2]
        if count_words(" ".join(tail)) < MIN_WORDS and count_words(" ".join(before + tail)) <= MAX_WORDS:
            passages[-2:] = [before + tail]
    return [PassageText(heading=heading, text=" ".join(sentences_)) for sentences_ in passages]


def split(sections: list[Section]) -> list[PassageText]:
    return [passage for section in sections for passage in split_section(section)]
