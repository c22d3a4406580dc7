"""Tool parameters are JSON Schema: checked when a tenant saves a tool, and against the model's arguments."""

from __future__ import annotations

import json

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as _JsonSchemaError
from jsonschema.exceptions import ValidationError as _JsonValidationError

from core.api.parsers import BadInputError, parse_json

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
    """The model's JSON arguments, checked against the tool's schema; ArgumentsError says what is wrong.
    They are read as every JSON door reads (``core.api.parsers.parse_json``: depth, NaN and Infinity,
    NUL and lone surrogates refused), since they are stored with the turn and PostgreSQL refuses those."""
    try:
        arguments = parse_json((raw or "{}").encode("utf-8", errors="surrogatepass"))
    except BadInputError as bad:
        raise ArgumentsError(f"the arguments are not valid JSON ({bad.message})") from None
    if not isinstance(arguments, dict):
        raise ArgumentsError("the arguments must be a JSON object")
    errors = sorted(Draft202012Validator(schema).iter_errors(arguments), key=lambda e: list(e.path))
    if errors:
        raise ArgumentsError("; ".join(_describe(error) for error in errors[:5]))
    return arguments


def _describe(error: _JsonValidationError) -> str:
    where = ".".join(str(part) for part in error.path)
    return f"{where}: {error.message}" if where else error.message
