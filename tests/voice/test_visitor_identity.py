"""Issue 21, item 1: visitors are who the server says they are.

An integrator's API conversation for "crm-4711" builds a profile; a page visitor who sends the same id to
the widget must meet a stranger's welcome, and never resume or end the integrator's conversation. Only a
site's identity hash (HMAC-SHA256 under the widget key's identity secret) reaches that profile. In-process:
the widget's HTTP door through Django's test client, the WebSocket through Channels' communicator.
"""

from __future__ import annotations

import json
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.core import signing
from django.test import Client
from django_tenants.utils import tenant_context

from conversations.actions import do_start_conversation
from conversations.models import Conversation, VisitorProfile
from tenants.actions import do_create_api_key, do_rotate_widget_identity_secret
from tests.api.conftest import api_client
from voice.consumers import VoiceConsumer
from voice.tokens import identity_hash

# Tests that run a session (the WebSocket's worker threads, the API's replies) need committed rows.
live = pytest.mark.django_db(transaction=True)

CRM_ID = "crm-4711"


# ---------------------------------------------------------------- helpers
def _widget_session(tenant, origin: str | None = None, raw: str | None = None, **body: object):
    """POST /widget/session as the page's widget does; returns (status, JSON body)."""
    payload = raw if raw is not None else json.dumps({"key": tenant.widget_key.key, **body})
    response = Client().post(
        "/widget/session",
        payload,
        content_type="application/json",
        HTTP_HOST="localhost",
        HTTP_ORIGIN=origin or tenant.origin,
    )
    return response.status_code, response.json()


class _Socket:
    """The voice WebSocket in-process: session.start, events until one of a type, session.end."""

    def __init__(self, token: str, origin: str) -> None:
        self.communicator = WebsocketCommunicator(
            VoiceConsumer.as_asgi(), f"/ws/voice/?token={token}", headers=[(b"origin", origin.encode())]
        )
        self.events: list[dict] = []
        self.close_code: int | None = None

    async def open(self) -> None:
        connected, _ = await self.communicator.connect()
        assert connected

    async def send(self, event: dict | str) -> None:
        await self.communicator.send_to(text_data=event if isinstance(event, str) else json.dumps(event))

    async def next(self, kind: str, timeout: float = 10) -> dict:
        while True:
            message = await self.communicator.receive_output(timeout=timeout)
            if message["type"] == "websocket.close":
                self.close_code = message.get("code")
                raise AssertionError(f"closed with {self.close_code} while waiting for {kind}: {self.events}")
            if "text" in message:
                event = json.loads(message["text"])
                self.events.append(event)
                if event["type"] == kind:
                    return event

    async def end(self) -> int | None:
        await self.send({"type": "session.end"})
        while self.close_code is None:
            message = await self.communicator.receive_output(timeout=10)
            if message["type"] == "websocket.close":
                self.close_code = message.get("code")
        await self.communicator.disconnect()
        return self.close_code


async def _start(answer: dict, origin: str, **start: object) -> tuple[_Socket, dict]:
    socket = _Socket(answer["token"], origin)
    await socket.open()
    await socket.send({"type": "session.start", "text_only": True, **start})
    return socket, await socket.next("session.created")


def _open_and_end(answer: dict, origin: str, **start: object) -> tuple[dict, int | None]:
    """A whole widget session: start (as an old widget would, with ``start``'s fields), then end it."""

    async def run() -> tuple[dict, int | None]:
        socket, created = await _start(answer, origin, **start)
        return created, await socket.end()

    return async_to_sync(run)()


def _visitor_of(answer: dict) -> str:
    """The visitor a session token names (read without spending the token)."""
    return signing.TimestampSigner(salt="aura.voice.session.v1").unsign_object(answer["token"])["v"]


def _api(tenant, scope: str = "write"):
    issued = do_create_api_key(tenant.organization, name="integrator", scopes=[scope], expires_at=None, created_by="t")
    return api_client(issued.secret)


def _conversation(tenant, conversation_id: str) -> Conversation:
    with tenant_context(tenant.organization):
        return Conversation.objects.get(pk=conversation_id)


@pytest.fixture
def crm_profile(alpha):
    """The integrator's API conversation for "crm-4711", ended: the visitor's profile is learnt."""
    client = _api(alpha)
    started = client.post("/api/v1/conversations/text/", {"visitor_id": CRM_ID}, format="json")
    assert started.status_code == 201, started.json()
    conversation_id = started.json()["id"]
    said = client.post(
        f"/api/v1/conversations/{conversation_id}/messages/",
        {"text": "Hi, my name is Zebulon and I'm allergic to peanuts."},
        format="json",
    )
    assert said.status_code == 200, said.json()
    assert client.post(f"/api/v1/conversations/{conversation_id}/end/").status_code == 200
    with tenant_context(alpha.organization):
        profile = VisitorProfile.objects.get(visitor_id=CRM_ID)
    assert profile.name == "Zebulon" and any("peanuts" in p for p in profile.preferences)
    return client


@pytest.fixture
def identity_secret(alpha) -> str:
    return do_rotate_widget_identity_secret(alpha.widget_key)


# ---------------------------------------------------------------- the attack of the issue
@live
def test_a_widget_visitor_sending_an_api_visitors_id_meets_a_strangers_welcome(alpha, crm_profile):
    status, answer = _widget_session(alpha, visitor_id=CRM_ID)
    assert status == 200, answer
    assert answer["identity"] == "anonymous"
    assert answer["visitor_token"]

    # and as an old widget does, the id again in session.start
    created, closed = _open_and_end(answer, alpha.origin, visitor_id=CRM_ID)

    assert created["remembered"] is False
    assert "Zebulon" not in created["greeting"] and not created["greeting"].startswith("Welcome back")
    assert closed == 1000
    stored = _conversation(alpha, answer["conversation_id"])
    assert stored.visitor_id.startswith("anon:") and stored.visitor_id != CRM_ID
    with tenant_context(alpha.organization):
        assert VisitorProfile.objects.get(visitor_id=CRM_ID).name == "Zebulon"  # untouched


@live
def test_a_forged_identity_hash_or_visitor_token_gets_a_fresh_anonymous_visitor(alpha, crm_profile, identity_secret):
    forged_hash = identity_hash("not-the-secret", CRM_ID)
    status, answer = _widget_session(alpha, visitor_id=CRM_ID, visitor_hash=forged_hash)
    assert status == 200 and answer["identity"] == "anonymous"
    visitor = _visitor_of(answer)
    assert visitor.startswith("anon:")

    # a token the platform signed comes back as the same visitor; any change to it makes a new one
    _, again = _widget_session(alpha, visitor_token=answer["visitor_token"])
    assert _visitor_of(again) == visitor
    tampered = answer["visitor_token"][:-2] + ("AA" if not answer["visitor_token"].endswith("AA") else "BB")
    for token in (tampered, "anon:made-up", CRM_ID, ""):
        _, other = _widget_session(alpha, visitor_token=token)
        assert _visitor_of(other).startswith("anon:") and _visitor_of(other) != visitor, token

    created, _ = _open_and_end(answer, alpha.origin)
    assert created["remembered"] is False and "Zebulon" not in created["greeting"]


@pytest.mark.django_db
def test_another_organizations_visitor_token_is_not_honoured(alpha, beta):
    _, theirs = _widget_session(beta)
    beta_visitor = _visitor_of(theirs)

    _, ours = _widget_session(alpha, visitor_token=theirs["visitor_token"])

    assert _visitor_of(ours) != beta_visitor


@live
def test_a_site_vouching_for_its_user_with_the_identity_hash_reaches_the_profile(alpha, crm_profile, identity_secret):
    status, answer = _widget_session(alpha, visitor_id=CRM_ID, visitor_hash=identity_hash(identity_secret, CRM_ID))
    assert status == 200, answer
    assert answer["identity"] == "verified"
    assert "visitor_token" not in answer  # a signed-in user is not kept in the browser

    created, _ = _open_and_end(answer, alpha.origin)

    assert created["remembered"] is True
    assert created["greeting"].startswith("Welcome back, Zebulon!")
    assert _conversation(alpha, answer["conversation_id"]).visitor_id == CRM_ID


@pytest.mark.django_db
def test_a_rotated_identity_secret_stops_the_old_hashes(alpha, identity_secret):
    old_hash = identity_hash(identity_secret, CRM_ID)
    do_rotate_widget_identity_secret(alpha.widget_key)

    _, answer = _widget_session(alpha, visitor_id=CRM_ID, visitor_hash=old_hash)

    assert answer["identity"] == "anonymous"


# ---------------------------------------------------------------- resuming and ending
@live
def test_a_widget_session_never_resumes_nor_ends_an_api_conversation(alpha, crm_profile, identity_secret):
    started = crm_profile.post("/api/v1/conversations/text/", {"visitor_id": CRM_ID}, format="json")
    api_conversation = started.json()["id"]

    attempts = [
        {"visitor_id": CRM_ID, "resume": api_conversation},
        {"visitor_id": CRM_ID, "resume": api_conversation, "resume_token": "forged"},
        # even the verified user, in a widget, without the token the conversation's own session got
        {"visitor_id": CRM_ID, "visitor_hash": identity_hash(identity_secret, CRM_ID), "resume": api_conversation},
    ]
    for body in attempts:
        status, answer = _widget_session(alpha, **body)
        assert status == 200, answer
        assert answer["resumed"] is False, body
        assert answer["conversation_id"] != api_conversation

    created, closed = _open_and_end(answer, alpha.origin)  # session.end of the widget's session

    assert created["resumed"] is False and closed == 1000
    assert _conversation(alpha, api_conversation).status == "active"
    assert _conversation(alpha, answer["conversation_id"]).status == "ended"
    reply = crm_profile.post(
        f"/api/v1/conversations/{api_conversation}/messages/", {"text": "Still there?"}, format="json"
    )
    assert reply.status_code == 200, reply.json()


@pytest.mark.django_db
def test_resuming_needs_the_token_issued_to_the_session_that_began_it(alpha):
    _, first = _widget_session(alpha)
    visitor = _visitor_of(first)
    with tenant_context(alpha.organization):  # the conversation as its session.start stores it
        do_start_conversation(
            conversation_id=first["conversation_id"],
            assistant_id=alpha.widget_key.assistant_id,
            visitor_id=visitor,
            channel="voice",
            origin=alpha.origin,
        )
    conversation_id = first["conversation_id"]
    _, stranger = _widget_session(alpha)

    cases = {
        "no token": {"visitor_token": first["visitor_token"], "resume": conversation_id},
        "another visitor with the token": {"visitor_token": stranger["visitor_token"], "resume": conversation_id},
        "the token of another conversation": {
            "visitor_token": first["visitor_token"],
            "resume": conversation_id,
            "resume_token": stranger["resume_token"],
        },
    }
    cases["another visitor with the token"]["resume_token"] = first["resume_token"]
    for case, body in cases.items():
        _, answer = _widget_session(alpha, **body)
        assert answer["resumed"] is False, case

    _, resumed = _widget_session(
        alpha, visitor_token=first["visitor_token"], resume=conversation_id, resume_token=first["resume_token"]
    )
    assert resumed["resumed"] is True and resumed["conversation_id"] == conversation_id


# ---------------------------------------------------------------- one visitor id rule at every door
BAD_IDS = {
    "NUL": '"crm\\u0000-4711"',
    "lone surrogate": '"crm-\\ud800"',
    "over-long": json.dumps("x" * 500),
    "control character": '"crm\\n4711"',
}


@pytest.mark.parametrize("case", sorted(BAD_IDS))
@pytest.mark.django_db
def test_a_bad_visitor_id_at_the_widget_door_is_a_400(alpha, case):
    raw = f'{{"key": "{alpha.widget_key.key}", "visitor_id": {BAD_IDS[case]}}}'

    status, answer = _widget_session(alpha, raw=raw)

    assert status == 400, answer
    # NUL and lone surrogates are refused by the JSON reader of every door (core.api.parsers), which names the field.
    expected = "invalid_request" if case in ("NUL", "lone surrogate") else "invalid_visitor_id"
    assert answer["error"]["code"] == expected
    assert "visitor_id" in answer["error"]["message"]


@pytest.mark.django_db
def test_the_anonymous_namespace_and_bad_credentials_are_refused_at_the_widget_door(alpha):
    for reserved in ("anon:someone-elses", "phone:" + "a" * 32):  # the platform's own namespaces
        status, answer = _widget_session(alpha, visitor_id=reserved)
        assert status == 400 and answer["error"]["code"] == "invalid_visitor_id", reserved
    for field in ("visitor_hash", "visitor_token", "resume", "resume_token"):
        status, answer = _widget_session(alpha, **{field: {"nested": True}})
        assert status == 400 and answer["error"]["code"] == "invalid_request", field


@live
def test_a_bad_visitor_id_in_session_start_is_an_error_event_and_the_session_goes_on(alpha):
    _, answer = _widget_session(alpha)

    async def run() -> tuple[list[dict], dict, int | None]:
        socket = _Socket(answer["token"], alpha.origin)
        await socket.open()
        errors = []
        for case in sorted(BAD_IDS):
            await socket.send(f'{{"type": "session.start", "text_only": true, "visitor_id": {BAD_IDS[case]}}}')
            errors.append(await socket.next("error"))
        await socket.send({"type": "session.start", "text_only": True})
        created = await socket.next("session.created")
        return errors, created, await socket.end()

    errors, created, closed = async_to_sync(run)()

    assert [(e["code"], e["event"]) for e in errors] == [("invalid_event", "session.start")] * len(BAD_IDS)
    assert all("visitor_id" in e["message"] for e in errors)
    assert created["conversation_id"] == answer["conversation_id"]
    assert closed == 1000  # never 4011
    assert _conversation(alpha, answer["conversation_id"]).visitor_id.startswith("anon:")


@pytest.mark.parametrize(
    "visitor_id",
    ["crm\u00004711", "x" * 129, "anon:someone", "phone:" + "a" * 32, "crm\n4711"],
    ids=["NUL", "long", "anon", "phone", "newline"],
)
@pytest.mark.django_db
def test_the_api_refuses_the_same_bad_visitor_ids(alpha, visitor_id):
    client = _api(alpha)

    response = client.post("/api/v1/conversations/text/", {"visitor_id": visitor_id}, format="json")

    assert response.status_code == 400, response.json()
    said = json.dumps(response.json())
    assert "visitor_id" in said or "NUL" in said, said  # the API's JSON parser refuses NULs anywhere first


@pytest.mark.django_db
def test_the_api_filter_refuses_a_nul_visitor_id(alpha):
    client = _api(alpha, "read")

    response = client.get("/api/v1/conversations/", {"visitor_id": "crm\u00004711"})

    assert response.status_code == 400


@pytest.mark.django_db
def test_a_fresh_widget_key_id_is_no_api_id(alpha):
    """Sanity of the namespaces: what the platform mints can never be what an integrator chose."""
    _, answer = _widget_session(alpha)
    visitor = _visitor_of(answer)
    client_chosen = {CRM_ID, str(uuid.uuid4()), "phone:123"}
    assert visitor.startswith("anon:") and visitor not in client_chosen and len(visitor) == len("anon:") + 22
