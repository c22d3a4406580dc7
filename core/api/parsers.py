"""JSON bodies read one way at every door (the API's parser, the widget's session endpoint): at most
DATA_UPLOAD_MAX_MEMORY_SIZE bytes (413), UTF-8, nested at most MAX_JSON_DEPTH deep (checked before parsing:
Python's json raises RecursionError on deep input), only strings PostgreSQL can store (no NUL characters,
no lone surrogates), and only finite numbers (no NaN, Infinity, nor 1e999). Every failure is a
``BadInputError`` with a message for people, never a 500."""

from __future__ import annotations

import json
import math
import re

import numpy as np
from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 32

# A string, to its closing quote or (unterminated) to the end: one pass, never rescanned.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.S)
_ESCAPED_NUL_OR_SURROGATE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_DEPTH = np.zeros(256, dtype=np.int8)
_DEPTH[[ord("["), ord("{")]] = 1
_DEPTH[[ord("]"), ord("}")]] = -1


class BadInputError(ValueError):
    """A request's input that the platform refuses: ``message`` says why, ``status`` is 400 or 413."""

    def __init__(self, message: str, *, status: int = 400, code: str = "parse_error") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def too_large() -> BadInputError:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return BadInputError(f"The request body is over the limit of {limit} bytes.", status=413, code="payload_too_large")


def nesting_within(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests arrays and objects at most ``limit`` deep (brackets inside strings do not
    count). Linear, and in C: strings are cut out by one regular expression, the running depth is a sum."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return True
    structure = np.frombuffer(_STRING.sub(b"", raw), dtype=np.uint8)
    return not structure.size or int(np.cumsum(_DEPTH[structure], dtype=np.int32).max()) <= limit


def check_strings(value: object, path: str = "") -> None:
    """Raise BadInputError when a string (key or value) anywhere in ``value`` has a NUL or a lone surrogate;
    the message names the field (``visitor_id``, ``items.2.name``)."""
    if isinstance(value, str):
        check_text(value, path)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, path)
            check_strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_strings(item, f"{path}.{index}" if path else str(index))


def check_text(value: str, path: str = "") -> None:
    where = f"`{path}`" if path else "Strings"
    if "\x00" in value:
        raise BadInputError(f"{where} may not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInputError(f"{where} must be valid Unicode (no lone surrogates).") from None


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999: PostgreSQL's json could not store the inf it becomes
        raise ValueError(f"{text[:40]} is out of range for a number")
    return number


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")  # Python's json reads NaN and Infinity; nothing else does


def parse_json(raw: bytes) -> object:
    """The JSON document in ``raw``, checked as this module says; raises BadInputError."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and len(raw) > limit:
        raise too_large()
    if not nesting_within(raw):
        raise BadInputError(f"JSON may nest arrays and objects at most {MAX_JSON_DEPTH} deep.")
    try:
        data = json.loads(raw.decode("utf-8"), parse_float=_finite, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise BadInputError("The body must be UTF-8.") from None
    except (ValueError, RecursionError) as exc:
        raise BadInputError(f"The body is not valid JSON: {str(exc)[:200]}") from None
    if _ESCAPED_NUL_OR_SURROGATE.search(raw):  # the only way either can get in (json refuses a raw NUL)
        check_strings(data)
    return data


def read_limited(stream: object) -> bytes:
    """At most DATA_UPLOAD_MAX_MEMORY_SIZE bytes of ``stream``; raises BadInputError (413) when there are more."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    raw = stream.read() if limit is None else stream.read(limit + 1)  # type: ignore[attr-defined]
    if limit is not None and len(raw) > limit:
        raise too_large()
    return raw


class StrictJSONParser(JSONParser):
    def parse(self, stream: object, media_type: str | None = None, parser_context: dict | None = None) -> object:
        try:
            return parse_json(read_limited(stream)) if stream is not None else None
        except BadInputError as bad:
            if bad.status == 413:
                raise PayloadTooLarge(bad.message) from None
            raise ParseError(bad.message) from None
