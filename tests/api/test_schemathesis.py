"""Schemathesis fuzzes every operation of the live schema with an admin key: no 500, no response that
breaks the schema. Bounded (a few examples an operation) to keep `make test` quick. Generated strings
include NUL characters (schemathesis' ``allow_x00``); a second pass sends each operation the hostile inputs
generation does not reach (deep nesting, lone surrogates, bodies over the size limit, NULs and over-long
values in paths and queries) and wants a 4xx in the API's error shape from every one."""

from __future__ import annotations

import json
import re

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api import data
from tests.api.conftest import api_client

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


MAX_EXAMPLES = 10


@pytest.mark.django_db
def test_api_conforms_to_its_schema(alpha, make_key, settings):
    """Every operation, a few generated requests each, called in-process through Django's WSGI handler."""
    settings.AURA_API_RATE_PER_KEY_PER_MINUTE = 100_000
    settings.AURA_API_RATE_PER_ORGANIZATION_PER_MINUTE = 100_000
    data.conversation_with_turns(alpha.organization)
    headers = {"Authorization": f"Bearer {make_key(alpha, ['admin'])}"}
    # As Django's test client does: a request must not close the test's connection (and its transaction).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    failures: list[str] = []
    try:
        schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", WSGIHandler())
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 30
        for operation in operations:

            @given(case=operation.as_strategy())
            @hypothesis_settings(
                max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
            )
            def call(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                call()
            except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report them all
                failures.append(f"{operation.label}: {exc}"[:3000])
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    assert not failures, "\n\n".join(failures)


_DEEP = b"[" * 50_000 + b"]" * 50_000
_NESTED = b'{"a": ' * 40 + b"1" + b"}" * 40
_SURROGATE = b'{"name": "\\ud800", "key": "\\udfff"}'
_NUL = b'{"name": "a\\u0000b", "url": "\\u0000"}'
_NOT_UTF8 = b'{"name": "\xff\xfe"}'
_HOSTILE_BODIES = {"deep": _DEEP, "nested": _NESTED, "surrogate": _SURROGATE, "nul": _NUL, "not-utf8": _NOT_UTF8}
_LIMIT = 20_000


@pytest.mark.django_db
def test_every_operation_answers_hostile_input_with_a_4xx(alpha, make_key, settings):
    """Every operation of the schema, the same hostile inputs: a 4xx with the API's error shape, never a 5xx."""
    settings.AURA_API_RATE_PER_KEY_PER_MINUTE = 100_000
    settings.AURA_API_RATE_PER_ORGANIZATION_PER_MINUTE = 100_000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = _LIMIT
    client = api_client(make_key(alpha, ["admin"]))
    schema = json.loads(client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content)
    answers: list[tuple[str, int, bool, bool]] = []  # label, status, the error shape, the body is read

    def send(label: str, method: str, path: str, body: bytes | None = None, *, read: bool = True) -> None:
        kwargs = {"content_type": "application/json", "data": body} if body is not None else {}
        response = getattr(client, method)(path, **kwargs)
        try:
            shape = set(response.json()["error"]) == {"code", "message", "details"}
        except (ValueError, KeyError, TypeError):
            shape = False
        answers.append((label, response.status_code, shape, read))

    operations = [
        (path, method, "requestBody" in operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    ]
    assert len(operations) >= 30
    for template, method, takes_body in operations:
        path = re.sub(r"\{[^}]+\}", "1", template)
        label = f"{method.upper()} {template}"
        send(f"{label} ?q=NUL", method, path + "?q=%00&cursor=%00")
        if "{" in template:
            send(f"{label} NUL id", method, re.sub(r"\{[^}]+\}", "a%00b", template))
            send(f"{label} long id", method, re.sub(r"\{[^}]+\}", "9" * 3000, template))
        if method in ("post", "put", "patch"):
            for name, body in _HOSTILE_BODIES.items():
                send(f"{label} {name}", method, path, body, read=takes_body)
            send(f"{label} oversize", method, path, b'{"name": "' + b"x" * (_LIMIT + 10) + b'"}')

    # a body an operation does not take (revoke, rotate) is ignored: anything but a 5xx
    bad = [answer for answer in answers if answer[1] >= 500 or (answer[3] and not (answer[1] < 500 and answer[2]))]
    assert not bad, bad
    assert all(400 <= status < 500 for _, status, _, read in answers if read), answers
    assert all(status == 413 for label, status, _, _ in answers if label.endswith("oversize")), answers
