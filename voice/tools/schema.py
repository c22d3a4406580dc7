"""Tool parameters are JSON Schema: checked when a tenant saves a tool, and against the model's arguments."""

from __future__ import annotations

import json
import math

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as _JsonSchemaError
from jsonschema.exceptions import ValidationError as _JsonValidationError

from core.api.parsers import BadInputError, check_strings

MAX_SCHEMA_BYTES = 8 * 1024


class SchemaError(ValueError):
    pass


class ArgumentsError(ValueError):
    pass


def check_parameters_schema(schema: object) -> None:
    """A function-calling parameters schema: a valid JSON Schema whose top level is an object."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise SchemaError('The parameters must be a JSON Schema object: {"type": "object", "properties": {…}}.')
    if not isinstance(schema.get("properties", {}), dict):
        raise SchemaError("“properties” must be an object.")
    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise SchemaError(f"The schema is longer than {MAX_SCHEMA_BYTES // 1024} KB.")
    try:
        Draft202012Validator.check_schema(schema)
    except _JsonSchemaError as exc:
        raise SchemaError(f"Not a valid JSON Schema: {exc.message}") from None


def parse_arguments(raw: str, schema: dict[str, object]) -> dict[str, object]:
    """The model's JSON arguments, checked against the tool's schema; ArgumentsError says what is wrong."""
    try:
        arguments = json.loads(raw or "{}", parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise ArgumentsError(f"the arguments are not valid JSON ({exc.msg})") from None
    except (ValueError, RecursionError) as exc:
        raise ArgumentsError(f"the arguments are not valid JSON ({str(exc)[:100]})") from None
    if not isinstance(arguments, dict):
        raise ArgumentsError("the arguments must be a JSON object")
    try:  # stored with the turn: PostgreSQL refuses NUL and lone surrogates (and the turn would be lost)
        check_strings(arguments)
    except BadInputError as bad:
        raise ArgumentsError(bad.message) from None
    errors = sorted(Draft202012Validator(schema).iter_errors(arguments), key=lambda e: list(e.path))
    if errors:
        raise ArgumentsError("; ".join(_describe(error) for error in errors[:5]))
    return arguments


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:40]} is out of range for a number")
    return number


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _describe(error: _JsonValidationError) -> str:
    where = ".".join(str(part) for part in error.path)
    return f"{where}: {error.message}" if where else error.message
