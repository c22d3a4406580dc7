"""Text conversations over the API: the voice session in text-only mode, whole or streamed (SSE)."""

from __future__ import annotations

import json

import pytest
from django_tenants.utils import tenant_context

from conversations.models import Conversation, Turn
from tests.api.conftest import api_client, error_code
from voice.api import text as text_api
from voice.models import Assistant
from voice.session import VoiceSession


def _set_tools(tenant, tools: list[str]) -> None:
    with tenant_context(tenant.organization):
        Assistant.objects.filter(is_default=True).update(tools=tools)


def _start(client, **body) -> str:
    response = client.post("/api/v1/conversations/text/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["channel"] == "api" and response.json()["status"] == "active"
    return response.json()["id"]


def _say(client, conversation_id: str, text: str, **extra):
    return client.post(f"/api/v1/conversations/{conversation_id}/messages/", {"text": text, **extra}, format="json")


def _sse(response) -> list[tuple[str, dict]]:
    assert response["Content-Type"].startswith("text/event-stream")
    raw = b"".join(response.streaming_content).decode()
    events = []
    for block in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


@pytest.mark.django_db(transaction=True)
def test_a_whole_reply_uses_tools_and_remembers_the_conversation(alpha, make_key):
    _set_tools(alpha, ["business_hours"])
    client = api_client(make_key(alpha, ["write"]))
    conversation_id = _start(client, visitor_id="api-visitor-1")
    with tenant_context(alpha.organization):
        assert not Turn.objects.filter(conversation_id=conversation_id).exists()  # no greeting on the API

    first = _say(client, conversation_id, "Are you open today?")

    assert first.status_code == 200, first.json()
    reply = first.json()
    assert reply["status"] == "completed" and reply["text"]
    assert [tool["name"] for tool in reply["tool_calls"]] == ["business_hours"]
    assert reply["metrics"]["total_ms"] > 0 and reply["conversation_ended"] is False

    second = _say(client, conversation_id, "Thanks. And what can you tell me about parking?")
    assert second.status_code == 200, second.json()
    with tenant_context(alpha.organization):
        turns = list(Turn.objects.filter(conversation_id=conversation_id).order_by("index"))
        conversation = Conversation.objects.get(pk=conversation_id)
    # the second session was resumed from the stored history: one conversation, four turns in order
    assert [(turn.index, turn.role) for turn in turns] == [
        (0, "visitor"),
        (1, "assistant"),
        (2, "visitor"),
        (3, "assistant"),
    ]
    assert turns[0].text == "Are you open today?" and turns[1].text == reply["text"]
    assert conversation.status == "active" and conversation.channel == "api"

    ended = client.post(f"/api/v1/conversations/{conversation_id}/end/")
    assert ended.status_code == 200 and ended.json()["status"] == "ended"
    assert ended.json()["end_reason"] == "visitor_ended"
    assert client.post(f"/api/v1/conversations/{conversation_id}/end/").status_code == 200
    late = _say(client, conversation_id, "Hello?")
    assert late.status_code == 409 and error_code(late) == "conversation_ended"


@pytest.mark.django_db(transaction=True)
def test_a_streamed_reply_is_server_sent_events_whose_deltas_make_the_text(alpha, make_key):
    _set_tools(alpha, ["business_hours"])
    client = api_client(make_key(alpha, ["write"]))
    conversation_id = _start(client)

    events = _sse(_say(client, conversation_id, "Are you open today?", stream=True))

    names = [name for name, _ in events]
    assert names[-1] == "response.done" and "response.tool" in names and "response.text.delta" in names
    done = events[-1][1]
    deltas = "".join(data["delta"] for name, data in events if name == "response.text.delta")
    assert deltas == done["text"] and done["status"] == "completed"
    assert all(data["type"] == name for name, data in events)
    with tenant_context(alpha.organization):
        assert Turn.objects.filter(conversation_id=conversation_id).count() == 2
    assert _say(client, conversation_id, "Thank you").status_code == 200  # the stream released the lock


@pytest.mark.django_db(transaction=True)
def test_a_lead_captured_through_the_api_appears_in_leads(alpha, make_key):
    _set_tools(alpha, ["capture_lead"])
    client = api_client(make_key(alpha, ["write"]))
    conversation_id = _start(client, visitor_id="api-visitor-2")

    reply = _say(client, conversation_id, "I'm Ana, please have sales email me at ana@example.com")

    assert reply.status_code == 200, reply.json()
    assert [tool["name"] for tool in reply.json()["tool_calls"]] == ["capture_lead"]
    leads = client.get("/api/v1/leads/").json()["results"]
    assert [(lead["email"], lead["conversation_id"]) for lead in leads] == [("ana@example.com", conversation_id)]


@pytest.mark.django_db(transaction=True)
def test_a_reply_that_takes_too_long_is_a_504_not_a_hang(alpha, make_key, monkeypatch):
    async def silent(self, text):  # the model never answers
        return None

    monkeypatch.setattr(VoiceSession, "handle_api_text", silent)
    monkeypatch.setattr(text_api, "REPLY_TIMEOUT_S", 0.3)
    client = api_client(make_key(alpha, ["write"]))
    conversation_id = _start(client)

    response = _say(client, conversation_id, "Hello")

    assert response.status_code == 504 and error_code(response) == "reply_timeout"
    events = _sse(_say(client, conversation_id, "Hello", stream=True))  # the lock was released
    assert events[-1][0] == "error" and events[-1][1]["code"] == "reply_timeout"


@pytest.mark.django_db
def test_bad_messages_and_starts_are_refused(alpha, alpha_api, make_key):
    conversation_id = _start(alpha_api)
    url = f"/api/v1/conversations/{conversation_id}/messages/"

    for body in ({"text": ""}, {"text": "   "}, {"text": "x" * 4001}, {}, {"text": "hi", "stream": "maybe"}):
        response = alpha_api.post(url, body, format="json")
        assert response.status_code == 400, body
        assert set(body or {"text": ""}) - {"text"} <= set(response.json()["error"]["details"]), response.json()
    bad_json = alpha_api.generic("POST", url, '{"text": ', content_type="application/json")
    assert bad_json.status_code == 400 and error_code(bad_json) == "parse_error"
    wrong_type = alpha_api.generic("POST", url, "text=hi", content_type="application/x-www-form-urlencoded")
    assert wrong_type.status_code == 415 and error_code(wrong_type) == "unsupported_media_type"

    unknown = alpha_api.post("/api/v1/conversations/text/", {"assistant_id": 987654321}, format="json")
    assert unknown.status_code == 400 and "assistant_id" in unknown.json()["error"]["details"]

    reader = api_client(make_key(alpha, ["read"]))
    assert error_code(reader.post("/api/v1/conversations/text/", {}, format="json")) == "insufficient_scope"
    assert error_code(reader.post(url, {"text": "hi"}, format="json")) == "insufficient_scope"
    assert error_code(reader.post(f"/api/v1/conversations/{conversation_id}/end/")) == "insufficient_scope"


@pytest.mark.django_db
def test_only_one_message_at_a_time(alpha, alpha_api):
    conversation_id = _start(alpha_api)
    with tenant_context(alpha.organization):
        running = text_api.ConversationLock(conversation_id)
        assert running.acquire()
    try:
        response = _say(alpha_api, conversation_id, "Are you there?")
        assert response.status_code == 409 and error_code(response) == "conversation_busy"
    finally:
        with tenant_context(alpha.organization):
            running.release()


@pytest.mark.django_db
def test_another_organizations_conversation_is_not_found_and_widget_conversations_take_no_messages(
    alpha, beta, alpha_api, beta_api
):
    from tests.api import data

    beta_conversation = _start(beta_api)
    for path in ("messages", "end"):
        response = alpha_api.post(f"/api/v1/conversations/{beta_conversation}/{path}/", {"text": "hi"}, format="json")
        assert response.status_code == 404 and error_code(response) == "not_found"

    widget_conversation = data.conversation_with_turns(alpha.organization)  # channel "voice"
    with tenant_context(alpha.organization):
        Conversation.objects.filter(pk=widget_conversation).update(status="active")
    response = _say(alpha_api, widget_conversation, "hi")
    assert response.status_code == 409 and error_code(response) == "not_api_conversation"


@pytest.mark.django_db(transaction=True)  # a message runs its session on a thread with its own connection
def test_the_plan_refuses_new_conversations_and_messages_when_busy_or_used_up(alpha, alpha_api):
    from datetime import timedelta

    from django.utils import timezone

    from billing.periods import Period
    from billing.sessions import _redis, slots_key, take_slot_sync
    from tests.billing.conftest import add_event, make_plan, subscribe

    month = Period.month_of(timezone.now()).starts_at
    subscribe(alpha.organization, make_plan(included_minutes=10, cap="hard", max_concurrent_sessions=1), at=month)
    conversation_id = _start(alpha_api)
    try:
        take_slot_sync(alpha.organization.pk, "a-visitor", 1)  # the one concurrent session is taken
        busy = alpha_api.post("/api/v1/conversations/text/", {}, format="json")
        assert (busy.status_code, error_code(busy)) == (429, "concurrent_limit")
        message = _say(alpha_api, conversation_id, "hello")
        assert (message.status_code, error_code(message)) == (429, "concurrent_limit")
        _redis().delete(slots_key(alpha.organization.pk))

        add_event(alpha.organization, "audio_in_seconds", 600, timezone.now() - timedelta(seconds=1))
        used_up = alpha_api.post("/api/v1/conversations/text/", {}, format="json")
        assert (used_up.status_code, error_code(used_up)) == (402, "quota_exceeded")
        assert error_code(_say(alpha_api, conversation_id, "hello")) == "quota_exceeded"
    finally:
        _redis().delete(slots_key(alpha.organization.pk))


@pytest.mark.django_db(transaction=True)
def test_an_unsure_message_is_labelled_by_a_worker_not_in_the_request(alpha, make_key, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the worker's job runs here, once the turn is stored
    with tenant_context(alpha.organization):
        Assistant.objects.filter(is_default=True).update(understand_with_model=True, tools=[])
    client = api_client(make_key(alpha, ["write"]))
    conversation_id = _start(client)
    calm = _say(client, conversation_id, "What time do you open tomorrow?")
    unsure = _say(client, conversation_id, "Oh perfect, you lost my booking again")

    assert calm.status_code == unsure.status_code == 200
    with tenant_context(alpha.organization):
        visitor = list(Turn.objects.filter(conversation_id=conversation_id, role="visitor").order_by("index"))
    assert [t.understood_by for t in visitor] == ["rules", "model"]  # only the unsure one went to the model
    assert visitor[0].emotion == "neutral"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stream", [False, True])
def test_a_database_unavailable_beyond_the_retries_is_a_503_with_retry_after_not_a_lost_turn(
    alpha, make_key, monkeypatch, settings, stream
):
    from django.db import OperationalError

    import conversations.actions as actions

    client = api_client(make_key(alpha, ["write"]))
    conversation_id = _start(client)
    settings.AURA_RECORDER_RETRY_S = 0.3

    def unavailable(**kwargs):
        raise OperationalError("the database system is in recovery mode")

    monkeypatch.setattr(actions, "do_record_turn", unavailable)
    response = _say(client, conversation_id, "Are you open today?", stream=stream)

    if stream:  # the headers went out with the first event: the last one says what happened
        event, data = _sse(response)[-1]
        assert (event, data["code"], data["retry_after_s"]) == ("error", "database_unavailable", 5)
    else:
        assert response.status_code == 503, response.json()
        assert error_code(response) == "database_unavailable" and response["Retry-After"] == "5"
    with tenant_context(alpha.organization):
        assert not Turn.objects.filter(conversation_id=conversation_id).exists()
