"""The emotions a visitor's turn can be marked with (``Turn.emotion``). Pure: ``voice.text.emotion``
hears them in words, and the chat model in ``voice.understanding`` when the words are unsure."""

from __future__ import annotations

import enum


class Emotion(enum.StrEnum):
    NEUTRAL = "neutral"
    POSITIVE = "positive"
    FRUSTRATED = "frustrated"
    ANGRY = "angry"
    CONFUSED = "confused"
