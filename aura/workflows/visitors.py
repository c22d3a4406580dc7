"""Forgetting a visitor everywhere: what the assistants remember of them, the recordings of their speech,
and the numbers and details of their phone calls."""

from __future__ import annotations

import uuid

from django.db import connection, transaction

from conversations.actions import ForgottenVisitor, do_forget_visitor
from telephony.actions import do_forget_calls


@transaction.atomic
def forget_visitor(*, visitor_id: str, conversation_id: uuid.UUID | str | None = None) -> ForgottenVisitor:
    """In the current tenant's schema: the visitor's profile is deleted, the conversation they asked in
    (if any) is marked so that nothing is learnt from it later, their recordings are deleted, and their
    phone calls keep no caller's or callee's number, first message or metadata. One transaction: all of
    it or none. Returns what the conversations app forgot."""
    forgotten = do_forget_visitor(visitor_id=visitor_id, conversation_id=conversation_id)
    organization_id = getattr(connection.tenant, "pk", None)
    if organization_id is not None and forgotten.conversation_ids:
        do_forget_calls(organization_id=organization_id, conversation_ids=forgotten.conversation_ids)
    return forgotten
