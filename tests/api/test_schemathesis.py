"""Schemathesis fuzzes every operation of the live schema with an admin key: no 500, no response that
breaks the schema. Bounded (a few examples an operation) to keep `make test` quick."""

from __future__ import annotations

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
