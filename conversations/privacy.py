"""Personal data in transcripts: found and replaced before storage, when the organization asks for it.

What is caught: payment card numbers (13–19 digits, Luhn-checked, spaces or dashes allowed), email
addresses, phone numbers (an international "+" number, or 9+ digits written as a phone number), and
national ids with a fixed shape: US social security numbers, UK National Insurance numbers, Spanish
DNI/NIE, and IBANs. Each is replaced by a label such as ``[card]`` so a transcript stays readable.
"""

from __future__ import annotations

import re

_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_UK_NINO = re.compile(r"\b[A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b", re.IGNORECASE)
_ES_DNI = re.compile(r"\b[XYZ]?\d{7,8}-?[A-Z]\b")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){2,4}(?![\w])")


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[card]" if 13 <= len(digits) <= 19 and _luhn(digits) else match.group()


def _phone(match: re.Match[str]) -> str:
    text = match.group()
    digits = re.sub(r"\D", "", text)
    return "[phone]" if len(digits) >= 9 or (text.startswith("+") and len(digits) >= 7) else text


def redact(text: str) -> str:
    """``text`` with personal data replaced by labels; unchanged when there is none."""
    if not text:
        return text
    text = _EMAIL.sub("[email]", text)
    text = _CARD.sub(_card, text)
    text = _IBAN.sub("[iban]", text)
    text = _SSN.sub("[national id]", text)
    text = _UK_NINO.sub("[national id]", text)
    text = _ES_DNI.sub("[national id]", text)
    return _PHONE.sub(_phone, text)


def redact_value(value: object) -> object:
    """Redact every string inside a JSON-like value (tool arguments and results)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_value(item) for item in value]
    return value
