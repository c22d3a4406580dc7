"""Review attacks on the widget's identity door (issue 21 item 1), as a hostile page would send them."""

from __future__ import annotations

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
