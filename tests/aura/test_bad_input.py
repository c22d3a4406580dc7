"""Issue 21, item 5: every bad input is a 4xx with a clear error, never a 500, at every door: the API and
the widget's session endpoint here, Twilio's webhooks in tests/telephony/test_webhook_bad_input.py. Deeply
nested JSON, NUL characters and lone surrogates, bodies over the size limit (413), over-long ids."""

from __future__ import annotations

import pytest
from django.test import Client

from tenants.actions import do_create_api_key
from tests.api.conftest import api_client, error_code

DEEP = b"[" * 100_000 + b"]" * 100_000  # Python's json gives up with RecursionError long before this
DEEP_OBJECT = b'{"key": ' + b'{"a": ' * 40 + b"1" + b"}" * 40 + b"}"  # over the depth limit, far under Python's


def widget(body: bytes, origin: str = "https://alpha.example") -> object:
    return Client().post(
        "/widget/session", body, content_type="application/json", HTTP_HOST="localhost", HTTP_ORIGIN=origin
    )


def widget_error(response) -> str:
    body = response.json()
    return body["error"]["code"]


@pytest.fixture
def api(alpha):
    key = do_create_api_key(alpha.organization, name="bad input", scopes=["admin"], expires_at=None, created_by="test")
    return api_client(key.secret)


@pytest.mark.django_db
@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["100k-arrays", "40-objects"])
def test_deeply_nested_json_is_a_400_on_the_api(api, body):
    for path in ("/api/v1/assistants/", "/api/v1/conversations/text/", "/api/v1/calls/"):
        response = api.post(path, body, content_type="application/json")
        assert response.status_code == 400, (path, response.content[:300])
        assert error_code(response) == "parse_error"
        assert "nest" in response.json()["error"]["message"]


@pytest.mark.django_db
@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["100k-arrays", "40-objects"])
def test_deeply_nested_json_is_a_400_on_the_widget_session(alpha, body):
    response = widget(body)
    assert response.status_code == 400, response.content[:300]
    assert widget_error(response) == "invalid_request"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "key", ['"pk_\\u0000abc"', '"pk_\\ud800abc"', '"pk_\x00abc"'], ids=["escaped-nul", "lone-surrogate", "raw-nul"]
)
def test_nul_and_lone_surrogates_in_the_widget_key_are_a_400(alpha, key):
    response = widget(b'{"key": ' + key.encode("utf-8", "surrogatepass") + b"}")
    assert response.status_code == 400, response.content[:300]
    assert widget_error(response) == "invalid_request"


@pytest.mark.django_db
def test_bytes_that_are_not_utf8_are_a_400(alpha, api):
    assert widget(b'{"key": "pk_\xff"}').status_code == 400
    response = api.post("/api/v1/assistants/", b'{"name": "\xff"}', content_type="application/json")
    assert response.status_code == 400 and error_code(response) == "parse_error"


@pytest.mark.django_db
def test_a_json_body_over_the_size_limit_is_a_413(alpha, api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    big = b'{"name": "' + b"x" * 20_000 + b'"}'

    response = api.post("/api/v1/assistants/", big, content_type="application/json")
    assert response.status_code == 413, response.content[:300]
    assert error_code(response) == "payload_too_large"

    response = widget(b'{"key": "' + b"x" * 20_000 + b'"}')
    assert response.status_code == 413 and widget_error(response) == "payload_too_large"


@pytest.mark.django_db
def test_nul_and_surrogates_in_query_strings_are_a_400(api):
    for query in ("?cursor=%00", "?search=a%00b", "?q%00=1", "?cursor=%ED%A0%80"):
        response = api.get("/api/v1/conversations/" + query)
        assert 400 <= response.status_code < 500, (query, response.status_code)
        assert response.status_code != 500


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/calls/{}/", "/api/v1/assistants/{}/", "/api/v1/conversations/{}/"])
def test_over_long_or_strange_ids_in_paths_are_a_404_and_nul_a_400(api, path):
    for bad in ("9" * 40, "x" * 5000, "-1", "%ED%A0%80"):
        response = api.get(path.format(bad))
        assert response.status_code == 404, (path, bad, response.status_code)
        assert error_code(response) == "not_found"
    response = api.get(path.format("a%00b"))
    assert response.status_code == 400 and error_code(response) == "invalid_request"


@pytest.mark.parametrize(
    ("text", "within"),
    [
        (b'["' + b"[" * 100 + b'"]', True),  # brackets inside a string do not nest
        (b'["\\"' + b"[" * 100 + b'"]', True),  # nor after an escaped quote
        (b'["\\\\", ' + b"[" * 40 + b"]" * 40 + b"]", False),  # an escaped backslash ends the string
        (b"[" * 32 + b"]" * 32, True),
        (b"[" * 33 + b"]" * 33, False),
        (b'{"a": ' * 33 + b"1" + b"}" * 33, False),
        (b"[" + b"[]," * 1000 + b"[]]", True),  # wide is fine, only deep is refused
        (b'"' + b"[" * 100, True),  # an unterminated string: json refuses it later
    ],
)
def test_nesting_is_counted_outside_strings(text, within):
    from core.api.parsers import nesting_within

    assert nesting_within(text) is within
