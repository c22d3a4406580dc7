"""JSON bodies whose strings PostgreSQL can store: no NUL characters, no lone surrogates."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _check(value: object) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ParseError("Strings may not contain NUL characters.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ParseError("Strings must be valid Unicode (no lone surrogates).") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key)
            _check(item)
    elif isinstance(value, list):
        for item in value:
            _check(item)


class StrictJSONParser(JSONParser):
    def parse(self, stream: object, media_type: str | None = None, parser_context: dict | None = None) -> object:
        data = super().parse(stream, media_type, parser_context)
        _check(data)
        return data
