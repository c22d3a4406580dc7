"""How a visitor sounds in words: neutral, positive, frustrated, angry or confused.

The fast tier of a turn's emotion (``voice.understanding`` adds the chat model when this one is
unsure): a small lexicon of words and phrases with weights, negation ("not happy" is not happy,
"not bad" is not bad), intensifiers ("so", "really", "extremely"), exclamation marks and shouted
words. Pure, English, a few µs a turn. Sarcasm ("great, just great") defeats it: mixed signals
make it unsure, and the slower tier decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from conversations.emotions import Emotion  # what a turn can be marked with; heard here in words

UPSET = frozenset({Emotion.FRUSTRATED, Emotion.ANGRY})

_P, _F, _A, _C = Emotion.POSITIVE, Emotion.FRUSTRATED, Emotion.ANGRY, Emotion.CONFUSED

# Phrases first (matched on the lowered text with word boundaries), then single words.
_PHRASES: tuple[tuple[str, Emotion, float], ...] = (
    ("what the hell", _A, 2.0),
    ("what the heck", _A, 1.5),
    ("speak to a manager", _A, 1.0),
    ("talk to a manager", _A, 1.0),
    ("wasting my time", _A, 2.0),
    ("waste of time", _A, 1.5),
    ("the worst", _A, 1.5),
    ("this is a joke", _A, 2.0),
    ("you people", _A, 1.0),
    ("fed up", _F, 2.0),
    ("already told you", _F, 2.0),
    ("told you", _F, 1.0),
    ("not what i asked", _F, 2.0),
    ("still doesn't", _F, 1.5),
    ("still does not", _F, 1.5),
    ("doesn't work", _F, 1.0),
    ("never mind", _F, 1.0),
    ("taking forever", _F, 2.0),
    ("for days", _F, 1.0),
    ("for an hour", _F, 1.0),
    ("again", _F, 0.6),
    ("so complicated", _F, 1.5),
    ("don't understand", _C, 2.0),
    ("do not understand", _C, 2.0),
    ("what do you mean", _C, 2.0),
    ("not sure i follow", _C, 2.0),
    ("makes no sense", _C, 2.0),
    ("doesn't make sense", _C, 2.0),
    ("repeat that", _C, 1.5),
    ("say that again", _C, 1.5),
    ("which one", _C, 1.0),
    ("i'm lost", _C, 2.0),
    ("thank you", _P, 1.0),
    ("no problem", Emotion.NEUTRAL, 0.0),
)
_WORDS: dict[str, tuple[Emotion, float]] = {
    # positive
    "thanks": (_P, 1.0),
    "great": (_P, 1.0),
    "perfect": (_P, 1.2),
    "wonderful": (_P, 1.5),
    "awesome": (_P, 1.5),
    "amazing": (_P, 1.5),
    "excellent": (_P, 1.5),
    "fantastic": (_P, 1.5),
    "lovely": (_P, 1.2),
    "love": (_P, 1.2),
    "happy": (_P, 1.0),
    "helpful": (_P, 1.2),
    "thrilled": (_P, 1.5),
    "glad": (_P, 1.0),
    "nice": (_P, 0.8),
    "good": (_P, 0.6),
    "brilliant": (_P, 1.5),
    # frustrated
    "ugh": (_F, 1.5),
    "annoying": (_F, 1.5),
    "annoyed": (_F, 1.5),
    "frustrating": (_F, 2.0),
    "frustrated": (_F, 2.0),
    "disappointed": (_F, 1.5),
    "disappointing": (_F, 1.5),
    "complain": (_F, 1.5),
    "complaint": (_F, 1.5),
    "wrong": (_F, 1.0),
    "cold": (_F, 0.5),
    "rude": (_F, 1.5),
    "seriously": (_F, 1.0),
    "whatever": (_F, 1.0),
    "sorted": (_F, 0.5),
    "still": (_F, 0.3),
    "twice": (_F, 0.8),
    # angry
    "ridiculous": (_A, 2.0),
    "unacceptable": (_A, 2.0),
    "furious": (_A, 2.5),
    "angry": (_A, 2.0),
    "useless": (_A, 2.0),
    "pathetic": (_A, 2.0),
    "terrible": (_A, 1.5),
    "awful": (_A, 1.5),
    "horrible": (_A, 1.5),
    "outrageous": (_A, 2.0),
    "disgusting": (_A, 2.0),
    "hell": (_A, 1.0),
    "damn": (_A, 1.5),
    "stupid": (_A, 2.0),
    "idiot": (_A, 2.5),
    "hate": (_A, 1.5),
    # confused
    "confused": (_C, 2.0),
    "confusing": (_C, 2.0),
    "huh": (_C, 2.0),
    "pardon": (_C, 1.0),
    "unclear": (_C, 1.5),
    "lost": (_C, 0.8),
}
_NEGATORS = frozenset({"not", "no", "never", "don't", "isn't", "wasn't", "aren't", "didn't", "doesn't", "nothing"})
_INTENSIFIERS = {
    "so": 1.5,
    "really": 1.5,
    "very": 1.5,
    "extremely": 2.0,
    "absolutely": 2.0,
    "totally": 1.7,
    "completely": 1.7,
    "incredibly": 2.0,
    "such": 1.4,
    "too": 1.3,
}
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_PHRASE_PATTERNS = tuple((re.compile(rf"\b{re.escape(p)}\b"), label, weight) for p, label, weight in _PHRASES)
NEGATION_REACH = 3  # words after a negator that it flips
SURE_SCORE = 1.5  # a label scoring at least this, clearly ahead of the next, is sure
WEAK_SCORE = 0.5  # below this, nothing was said that shows a feeling
SURE_MARGIN = 0.75


@dataclass(frozen=True, slots=True)
class Feeling:
    emotion: Emotion
    score: float  # the winning label's weight of evidence
    unsure: bool  # the slower tier should look


def feel(text: str) -> Feeling:
    lowered = text.lower()
    scores = dict.fromkeys(Emotion, 0.0)
    covered: list[tuple[int, int]] = []
    for pattern, label, weight in _PHRASE_PATTERNS:
        for match in pattern.finditer(lowered):
            scores[label] += weight
            covered.append(match.span())
    tokens = list(_WORD.finditer(text))
    words = [t.group().lower() for t in tokens]
    for index, token in enumerate(tokens):
        word = words[index]
        found = _WORDS.get(word)
        if found is None or any(start <= token.start() < end for start, end in covered):
            continue
        label, weight = found
        before = words[max(0, index - NEGATION_REACH) : index]
        for previous in reversed(before[-2:]):
            if previous in _INTENSIFIERS:
                weight *= _INTENSIFIERS[previous]
                break
        if any(w in _NEGATORS or w.endswith("n't") for w in before):
            if label == _P:  # "not happy", "not great": a complaint
                label, weight = _F, weight * 0.8
            else:  # "not bad", "not angry": no complaint
                label, weight = (_P, weight * 0.4) if weight >= 1.5 else (Emotion.NEUTRAL, 0.0)
        scores[label] += weight
    shouted = sum(1 for t in tokens if len(t.group()) > 2 and t.group().isupper())
    if shouted:
        scores[_A] += 1.0 * shouted
    if "!" in text:
        upset = _A if scores[_A] >= scores[_F] else _F
        target = _P if scores[_P] > scores[upset] else upset
        if scores[target] > 0:
            scores[target] += 0.5
    if text.rstrip().endswith("?") and scores[_C] > 0:
        scores[_C] += 0.5
    ranked = sorted(((score, label) for label, score in scores.items() if label != Emotion.NEUTRAL), reverse=True)
    (top, label), (second, _) = ranked[0], ranked[1]
    if top < WEAK_SCORE:
        return Feeling(Emotion.NEUTRAL, 0.0, unsure=False)
    mixed = scores[_P] > 0 and (scores[_A] + scores[_F]) > 0  # sarcasm, or a complaint politely put
    unsure = top < SURE_SCORE or top - second < SURE_MARGIN or mixed
    return Feeling(label, round(top, 2), unsure=unsure)
