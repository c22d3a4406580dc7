"""Review attacks on the widget's identity door (issue 21 item 1), as a hostile page would send them."""

from __future__ import annotations

import json

import pytest

from tenants.actions import do_rotate_widget_identity_secret
from tests.voice.test_visitor_identity import CRM_ID, _widget_session


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("visitor_hash", "status"),
    [("é" * 64, 200), ("\u0660" * 64, 200), ("İ" * 64, 200), ("\ud800" * 64, 400), ("\x00" * 64, 400)],
)
def test_a_non_ascii_identity_hash_is_an_anonymous_visitor_or_a_400_never_a_500(alpha, visitor_hash, status):
    do_rotate_widget_identity_secret(alpha.widget_key)

    answered, answer = _widget_session(alpha, visitor_id=CRM_ID, visitor_hash=visitor_hash)

    assert answered == status, answer
    if status == 200:
        assert answer["identity"] == "anonymous"


live = pytest.mark.django_db(transaction=True)


@live
@pytest.mark.parametrize("text", ["hello\x00world", "hello \ud800 world"])
def test_nul_or_a_lone_surrogate_in_input_text_is_an_error_event_and_the_session_goes_on(alpha, text):
    from asgiref.sync import async_to_sync

    from tests.voice.test_visitor_identity import _start

    status, answer = _widget_session(alpha)
    assert status == 200, answer

    async def run() -> tuple[dict, dict, int | None]:
        socket, _ = await _start(answer, alpha.origin)
        await socket.send(f'{{"type": "input.text", "text": {json.dumps(text)}}}')
        refused = await socket.next("error")
        await socket.send({"type": "input.text", "text": "What are your opening hours?"})
        answered = await socket.next("response.done", timeout=20)
        return refused, answered, await socket.end()

    refused, answered, closed = async_to_sync(run)()

    assert refused["code"] == "invalid_event", refused
    assert answered["type"] == "response.done"
    assert closed == 1000
