"""Finding 12: calls hold callers' numbers and integrators' metadata; retention and "forget me" reach them."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from aura.tasks import apply_retention
from aura.workflows.visitors import forget_visitor
from conversations.actions import do_start_conversation
from telephony.models import Call, Direction
from tenants.models import Organization
from tests.telephony.conftest import ALPHA_NUMBER, BETA_NUMBER, CALLER, first_assistant

OTHER_CALLER = "+15005550999"


def call_of(number, sid: str, *, caller: str = CALLER, conversation_id=None, days_ago: int = 0, ended=True) -> Call:
    call = Call.objects.create(
        organization=number.organization,
        phone_number=number,
        call_sid=sid,
        direction=Direction.INBOUND,
        from_number=caller,
        to_number=number.number,
        conversation_id=conversation_id,
        metadata={"crm_id": "c-17"},
        ended_at=timezone.now() if ended else None,
    )
    Call.objects.filter(pk=call.pk).update(started_at=timezone.now() - timedelta(days=days_ago))
    return call


@pytest.mark.django_db
def test_a_forgotten_caller_leaves_no_number_or_metadata_on_their_calls(alpha, alpha_number):
    visitor = "phone:" + "a" * 32
    with tenant_context(alpha.organization):
        theirs = do_start_conversation(
            conversation_id=uuid.uuid4(),
            assistant_id=first_assistant(alpha),
            visitor_id=visitor,
            channel="phone",
            origin=ALPHA_NUMBER,
        )
        someone_else = do_start_conversation(
            conversation_id=uuid.uuid4(),
            assistant_id=first_assistant(alpha),
            visitor_id="phone:" + "b" * 32,
            channel="phone",
            origin=ALPHA_NUMBER,
        )
    forgotten = call_of(alpha_number, "CA-theirs", conversation_id=theirs.pk)
    kept = call_of(alpha_number, "CA-other", caller=OTHER_CALLER, conversation_id=someone_else.pk)

    with tenant_context(alpha.organization):
        forget_visitor(visitor_id=visitor, conversation_id=theirs.pk)

    forgotten.refresh_from_db()
    kept.refresh_from_db()
    assert (forgotten.from_number, forgotten.metadata, forgotten.to_number) == ("", {}, ALPHA_NUMBER)
    assert (kept.from_number, kept.metadata) == (OTHER_CALLER, {"crm_id": "c-17"})


@pytest.mark.django_db
def test_the_retention_period_deletes_old_calls_too(alpha, alpha_number, beta, beta_number):
    Organization.objects.filter(pk=alpha.organization.pk).update(retention_days=30)
    call_of(alpha_number, "CA-old", days_ago=40)
    call_of(alpha_number, "CA-recent", days_ago=5)
    call_of(alpha_number, "CA-open", days_ago=40, ended=False)  # still open: ended (and then deleted) later
    call_of(beta_number, "CA-beta-old", days_ago=400)  # beta keeps everything

    apply_retention()

    assert set(Call.objects.values_list("call_sid", flat=True)) == {"CA-recent", "CA-open", "CA-beta-old"}
    assert Call.objects.get(call_sid="CA-beta-old").to_number == BETA_NUMBER
