"""Review attacks on HTTP tools: what a tool's server (or a model steered by a visitor) sends back must be
something the conversation can store: PostgreSQL refuses NUL characters, lone surrogates, NaN and Infinity
(a refused row loses the whole turn from the record)."""

from __future__ import annotations

import json

import pytest

from core.api.parsers import BadInputError, check_strings
from tests.outbound import http_server
from tests.voice.tools.test_http_tool import _box, _tool, loopback_allowed  # noqa: F401 - fixture
from voice.providers.base import ToolCall


def _storable(value: object) -> bool:
    """What PostgreSQL's text and jsonb take: no NUL character, no lone surrogate, no NaN or Infinity."""
    try:
        json.dumps(value, allow_nan=False)
        check_strings(value)
    except (ValueError, BadInputError):
        return False
    return True


@pytest.mark.parametrize(
    "body",
    [b'{"status": "ship\\u0000ped"}', b'{"status": "\\ud800"}', b"plain\x00text", b'{"eta": NaN}'],
)
async def test_a_tool_answer_with_nul_or_surrogates_reaches_the_model_storable(loopback_allowed, body):  # noqa: F811
    with http_server(body=body) as server:
        run = await _box(_tool(f"{server.url}/orders")).run(
            ToolCall(id="1", name="order_status", arguments='{"order_id": "1"}'), round_=1
        )

    assert not run.is_error, run.result
    assert _storable(run.result), repr(run.result)


@pytest.mark.parametrize(
    "arguments", ['{"order_id": "1", "n": NaN}', '{"order_id": "1\\u0000"}', '{"order_id": "\\udc00"}']
)
async def test_model_arguments_postgresql_cannot_store_are_refused_before_any_request(
    loopback_allowed,  # noqa: F811
    arguments,
):
    with http_server() as server:
        run = await _box(_tool(f"{server.url}/orders")).run(
            ToolCall(id="1", name="order_status", arguments=arguments), round_=1
        )

    assert run.is_error and "invalid arguments" in run.result, run.result
    assert _storable(run.arguments) and server.requests == []
