"""The admin under its Content-Security-Policy in a real browser: no script or style the policy blocks."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.widget.test_widget_browser import _browser

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
RECORD_VIOLATIONS = (
    "window.__csp = []; document.addEventListener('securitypolicyviolation', "
    "e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
)


def test_the_tenant_admin_works_under_its_policy(daphne_server, alpha):
    base = f"http://{alpha.host}:{daphne_server.port}"
    with _browser(None) as page:
        page.add_init_script(RECORD_VIOLATIONS)
        response = page.goto(f"{base}/admin/login/")
        assert "script-src" in response.headers["content-security-policy"]
        page.fill("#id_username", alpha.admin_email)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{base}/admin/")
        for path in ("/admin/", "/admin/voice/httptool/add/", "/admin/voice/assistant/"):
            page.goto(f"{base}{path}")
            page.wait_for_load_state("load")
            assert page.evaluate("window.__csp") == [], path
        # The admin's own scripts (static files) still ran.
        assert page.evaluate("typeof django !== 'undefined' && typeof django.jQuery === 'function'")
