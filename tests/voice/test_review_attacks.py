"""Review attacks on the widget's identity door (issue 21 item 1), as a hostile page would send them."""

from __future__ import annotations

import pytest

from tenants.actions import do_rotate_widget_identity_secret
from tests.voice.test_visitor_identity import CRM_ID, _widget_session


@pytest.mark.django_db
@pytest.mark.parametrize("visitor_hash", ["é" * 64, "\u0660" * 64, "\ud800" * 64, "\x00" * 64])
def test_a_non_ascii_identity_hash_is_an_anonymous_visitor_not_a_500(alpha, visitor_hash):
    do_rotate_widget_identity_secret(alpha.widget_key)

    status, answer = _widget_session(alpha, visitor_id=CRM_ID, visitor_hash=visitor_hash)

    assert status == 200, answer
    assert answer["identity"] == "anonymous"
