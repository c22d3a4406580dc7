"""Structured logs: one JSON object a line, with the request or session id, personal data redacted.

``LOG_FORMAT=json`` (the production default) or ``plain`` (development). Fields passed with
``extra={"fields": {...}}`` land in the JSON object as they are (e.g. a turn's timings).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

from core import log_context

# What must never reach a log: e-mail addresses, phone and card numbers, provider keys and tokens.
_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(?:sk|xai|sess)[-_][A-Za-z0-9_\-]{8,}"), "[key]"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._\-]{8,}"), "Bearer [key]"),
    (re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}"), "[email]"),
    # International numbers with a leading +, and the common national shapes (555-123-4567, (555) 123 4567).
    (re.compile(r"(?<![\w.\-])\+\d[\d ()\-]{7,}\d\b"), "[phone]"),
    (re.compile(r"(?<![\w.\-])\(?\d{3}\)?[ \-.]\d{3}[ \-.]\d{4}\b"), "[phone]"),
)
_CARD = re.compile(r"(?<![\w.\-])(?:\d[ \-]?){12,18}\d\b")


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[card]" if _luhn_valid(digits) else match.group()


def redact(text: str) -> str:
    """Masks personal data and secrets. Card numbers only when they pass the Luhn check, so ids and
    timestamps stay readable."""
    text = _CARD.sub(_card, text)
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class ContextFilter(logging.Filter):
    """Adds the bound request / session / organization ids, and redacts the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.context = log_context.current()
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "context", {}),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, separators=(",", ":"))


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        context = getattr(record, "context", {})
        line = super().format(record)
        ids = " ".join(f"{key}={value}" for key, value in context.items())
        fields = getattr(record, "fields", None)
        extra = " ".join(f"{key}={value}" for key, value in fields.items()) if isinstance(fields, dict) else ""
        return " ".join(part for part in (line, ids, extra) if part)


def logging_config(log_format: str, level: str) -> dict[str, object]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "core.logs.ContextFilter"}},
        "formatters": {
            "json": {"()": "core.logs.JsonFormatter"},
            "plain": {"()": "core.logs.PlainFormatter", "format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["context"]},
        },
        "root": {"handlers": ["console"], "level": level},
        # httpx2 logs every provider request at INFO: one line per token stream is noise, not news.
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            "httpx2": {"level": "WARNING"},
            "twilio.http_client": {"level": "WARNING"},  # every request and its headers, at INFO
            "axes": {"level": "WARNING"},  # a line for every login, failed or not, at INFO
        },
    }
