"""The widget's colours: text on the tenant's accent is white or dark, whichever reads better (WCAG 2
contrast). static/aura/widget.js makes the same choice; the admin warns when neither reaches 4.5:1."""

from __future__ import annotations

LIGHT_TEXT = "#ffffff"
DARK_TEXT = "#111827"
MIN_TEXT_CONTRAST = 4.5  # WCAG 2 AA, normal text


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def text_on(accent: str) -> tuple[str, float]:
    """The text colour for the accent (a ``#rrggbb``) and the contrast it reaches."""
    return max(((text, contrast(accent, text)) for text in (LIGHT_TEXT, DARK_TEXT)), key=lambda pair: pair[1])
