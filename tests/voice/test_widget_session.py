"""POST /widget/session: the only door to a voice session."""

from __future__ import annotations

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from tenants.appearance import contrast, text_on
from tenants.models import WidgetKey, origin_allowed
from tenants.queries import widget_identity_secret
from voice.models import Assistant
from voice.tokens import redeem_token


def _post(key: str | None, origin: str | None = "http://alpha.localhost:8000", body: str | None = None, **extra):
    headers = {"HTTP_HOST": "localhost", **extra}
    if origin:
        headers["HTTP_ORIGIN"] = origin
    payload = body if body is not None else ("{}" if key is None else f'{{"key": "{key}"}}')
    return Client().post("/widget/session", payload, content_type="application/json", **headers)


@pytest.mark.django_db
def test_an_allowed_origin_gets_a_token_bound_to_it(alpha):
    response = _post(alpha.widget_key.key)

    body = response.json()
    assert response.status_code == 200, body
    assert response["Access-Control-Allow-Origin"] == "http://alpha.localhost:8000"
    assert body["expires_in"] == 60
    assert body["ws_url"].startswith("ws://localhost/ws/voice/?token=")
    grant = redeem_token(body["token"], origin="http://alpha.localhost:8000")
    assert grant.conversation_id == body["conversation_id"]
    assert grant.organization_id == alpha.organization.pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("origin", "status", "code"),
    [("https://evil.example", 403, "origin_not_allowed"), (None, 403, "origin_not_allowed")],
)
def test_other_origins_are_refused_with_a_readable_error(alpha, origin, status, code):
    response = _post(alpha.widget_key.key, origin=origin)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("not json", 400, "invalid_request"),
        ("{}", 400, "invalid_request"),
        ('{"key": 5}', 400, "invalid_request"),
        ('{"key": "pk_nope"}', 404, "unknown_key"),
        ('{"key": "sk_wrong_kind"}', 404, "unknown_key"),
    ],
)
def test_bad_requests(alpha, body, status, code):
    response = _post(None, body=body)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code


@pytest.mark.django_db
def test_an_inactive_key_is_unknown(alpha):
    key = alpha.widget_key
    key.is_active = False
    key.save()

    assert _post(key.key).status_code == 404


@pytest.mark.django_db
def test_requests_past_the_per_ip_limit_get_429_with_retry_after(alpha):
    key = alpha.widget_key.key
    statuses = [_post(key, REMOTE_ADDR="203.0.113.9").status_code for _ in range(61)]

    assert statuses[:60] == [200] * 60
    limited = _post(key, REMOTE_ADDR="203.0.113.9")
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 61
    assert _post(key, REMOTE_ADDR="203.0.113.10").status_code == 200  # another visitor is unaffected


def _preflight(key: str | None, origin: str):
    path = "/widget/session" + (f"?key={key}" if key is not None else "")
    return Client().options(path, HTTP_HOST="localhost", HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")


CORS_HEADERS = ("Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers")


@pytest.mark.django_db
def test_preflight_allows_only_an_origin_the_key_allows(alpha):
    allowed = _preflight(alpha.widget_key.key, "http://alpha.localhost:8000")
    assert allowed.status_code == 204
    assert allowed["Access-Control-Allow-Origin"] == "http://alpha.localhost:8000"
    assert allowed["Access-Control-Allow-Methods"] == "POST, OPTIONS"

    for refused in (
        _preflight(alpha.widget_key.key, "https://evil.example"),  # a site the key does not allow
        _preflight(None, "http://alpha.localhost:8000"),  # no key: nothing to check the origin against
        _preflight("pk_made_up", "http://alpha.localhost:8000"),
        _preflight("pk_%00", "http://alpha.localhost:8000"),  # a NUL never reaches the database
    ):
        # A NUL in the query is refused (400) before the view by the bad-input middleware; CORS headers on neither.
        assert refused.status_code in (204, 400)
        assert not any(header in refused for header in CORS_HEADERS), dict(refused.items())


@pytest.mark.django_db
def test_error_answers_carry_cors_headers_only_for_an_allowed_origin(alpha):
    foreign = _post(alpha.widget_key.key, origin="https://evil.example")
    assert foreign.status_code == 403
    assert "Access-Control-Allow-Origin" not in foreign

    for body in ("not json", "{}", '{"key": "pk_nope"}'):  # before the key and its origins are known
        early = _post(None, origin="https://evil.example", body=body)
        assert early.status_code in (400, 404) and "Access-Control-Allow-Origin" not in early

    mismatch = Client().post(
        f"/widget/session?key={alpha.widget_key.key}",
        '{"key": "pk_another"}',
        content_type="application/json",
        HTTP_HOST="localhost",
        HTTP_ORIGIN="http://alpha.localhost:8000",
    )
    assert mismatch.status_code == 400


@pytest.mark.django_db
def test_the_key_may_come_in_the_query_string_as_the_widget_sends_it(alpha):
    response = Client().post(
        f"/widget/session?key={alpha.widget_key.key}",
        "{}",
        content_type="application/json",
        HTTP_HOST="localhost",
        HTTP_ORIGIN="http://alpha.localhost:8000",
    )
    assert response.status_code == 200, response.json()
    assert response["Access-Control-Allow-Origin"] == "http://alpha.localhost:8000"


@pytest.mark.parametrize(
    ("origin", "allowed", "expected"),
    [
        ("https://shop.example", ["https://shop.example"], True),
        ("https://shop.example/", ["https://shop.example"], True),
        ("http://shop.example", ["https://shop.example"], False),
        ("https://a.shop.example", ["https://*.shop.example"], True),
        ("https://shop.example", ["https://*.shop.example"], False),
        ("https://evilshop.example", ["https://*.shop.example"], False),
        ("null", ["null"], False),
        ("", [], False),
    ],
)
def test_origin_matching(origin, allowed, expected):
    assert origin_allowed(origin, allowed) is expected


@pytest.mark.django_db
def test_tenant_admin_manages_only_its_own_keys(alpha, beta):
    client = Client(HTTP_HOST=alpha.host)
    client.post("/admin/login/", {"username": alpha.admin_email, "password": "correct-horse-battery-1"})

    page = client.get("/admin/tenants/widgetkey/").content.decode()
    assert alpha.widget_key.key in page
    assert beta.widget_key.key not in page
    assert client.get(f"/admin/tenants/widgetkey/{beta.widget_key.pk}/change/").status_code in (302, 404)
    change = client.get(f"/admin/tenants/widgetkey/{alpha.widget_key.pk}/change/").content.decode()
    assert "/static/aura/widget.js" in change and alpha.widget_key.key in change
    assert f'<aura-voice-widget key="{alpha.widget_key.key}" placement="inline"' in change  # live preview
    assert WidgetKey.objects.filter(organization=beta.organization).count() == 1


@pytest.fixture
def alpha_admin(alpha) -> tuple[Client, int]:
    """Alpha's admin, logged in on alpha's host, and the id of alpha's assistant."""
    client = Client(HTTP_HOST=alpha.host)
    client.post("/admin/login/", {"username": alpha.admin_email, "password": "correct-horse-battery-1"})
    with tenant_context(alpha.organization):
        return client, Assistant.objects.get().pk


@pytest.mark.django_db
def test_appearance_set_in_the_admin_is_written_into_the_snippet(alpha, alpha_admin):
    key, client, assistant_id = alpha.widget_key, *alpha_admin

    response = client.post(
        f"/admin/tenants/widgetkey/{key.pk}/change/",
        {
            "name": "Shop",
            "assistant": assistant_id,
            "origins": "https://shop.example\nhttps://*.shop.example",
            "is_active": "on",
            "title": "Ask Alpha",
            "accent_color": "#0f766e",
            "placement": "bottom-left",
        },
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    key.refresh_from_db()
    assert key.allowed_origins == ["https://*.shop.example", "https://shop.example"]
    page = client.get(f"/admin/tenants/widgetkey/{key.pk}/change/").content.decode()
    assert (
        "data-title=&quot;Ask Alpha&quot; data-accent=&quot;#0f766e&quot; data-placement=&quot;bottom-left&quot;"
        in page
    )
    assert 'accent="#0f766e"' in page


@pytest.mark.django_db
def test_a_bad_origin_or_colour_is_refused_in_the_admin(alpha, alpha_admin):
    key, client, assistant_id = alpha.widget_key, *alpha_admin

    response = client.post(
        f"/admin/tenants/widgetkey/{key.pk}/change/",
        {
            "name": "Shop",
            "assistant": assistant_id,
            "origins": "shop.example/path",
            "accent_color": "red",
            "placement": "bottom-right",
        },
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "is not an origin" in page
    assert "Use a colour like" in page


@pytest.mark.django_db
def test_a_deleted_key_stops_working_at_once_despite_the_cache(alpha):
    key = alpha.widget_key
    assert _post(key.key).status_code == 200  # now cached

    key.delete()

    assert _post(key.key).status_code == 404


@pytest.mark.django_db
def test_the_organizations_own_host_may_always_use_its_keys_for_the_admins_preview(alpha, beta):
    key = alpha.widget_key
    key.allowed_origins = ["https://shop.example"]
    key.save()

    assert _post(key.key, origin=alpha.origin).status_code == 200  # the live preview in alpha's admin
    assert _post(key.key, origin=beta.origin).status_code == 403  # another organization's host is not
    assert _post(key.key, origin="http://evil.example").status_code == 403


def _save_key(client, key, assistant_id, **changes):
    data = {
        "name": "Shop",
        "assistant": assistant_id,
        "origins": "https://shop.example",
        "is_active": "on",
        "title": "",
        "accent_color": "#4f46e5",
        "placement": "bottom-right",
        **changes,
    }
    return client.post(f"/admin/tenants/widgetkey/{key.pk}/change/", data, follow=True).content.decode()


@pytest.mark.django_db
def test_an_accent_no_text_colour_reads_well_on_is_warned_about(alpha, alpha_admin):
    key, client, assistant_id = alpha.widget_key, *alpha_admin

    grey = _save_key(client, key, assistant_id, accent_color="#7d7d7d")
    indigo = _save_key(client, key, assistant_id, accent_color="#4f46e5")

    assert "reads at only 4.3:1" in grey  # the best of white or dark text on it
    assert "reads at only" not in indigo


def test_text_on_the_accent_is_the_colour_with_more_contrast():
    assert text_on("#4f46e5") == ("#ffffff", pytest.approx(6.29, abs=0.01))
    assert text_on("#fde047")[0] == "#111827"
    assert contrast("#ffffff", "#000000") == pytest.approx(21)


@pytest.mark.django_db
def test_the_form_says_what_the_widget_does_with_the_title_and_where_the_preview_works(alpha, alpha_admin):
    key, client, _ = alpha.widget_key, *alpha_admin

    page = client.get(f"/admin/tenants/widgetkey/{key.pk}/change/").content.decode()

    assert "Empty: the assistant&#x27;s name" in page or "Empty: the assistant's name" in page
    assert "your organization&#x27;s own address" in page or "your organization's own address" in page


# ---------------------------------------------------------------- the identity secret (issue 21)
@pytest.mark.django_db
def test_the_identity_secret_is_shown_once_in_the_admin_and_only_its_hint_afterwards(alpha, alpha_admin):
    key, client = alpha.widget_key, alpha_admin[0]
    change_url = f"/admin/tenants/widgetkey/{key.pk}/change/"
    assert "none yet: rotate to make one" in client.get(change_url).content.decode()

    shown = client.post("/admin/tenants/widgetkey/", {"action": "rotate_identity_secret", "_selected_action": [key.pk]})

    assert shown.status_code == 200 and "no-store" in shown["Cache-Control"]
    key.refresh_from_db()
    secret = widget_identity_secret(key)
    assert secret.startswith("ids_") and secret in shown.content.decode()
    assert secret not in key.encrypted_identity_secret  # sealed at rest
    page = client.get(change_url).content.decode()
    assert secret not in page and key.identity_secret_hint in page
    assert secret not in client.get("/admin/tenants/widgetkey/").content.decode()


@pytest.mark.django_db
def test_a_key_made_in_the_admin_shows_its_identity_secret_once(alpha, alpha_admin):
    client, assistant_id = alpha_admin
    response = client.post(
        "/admin/tenants/widgetkey/add/",
        {
            "name": "Shop",
            "assistant": assistant_id,
            "origins": "https://shop.example",
            "is_active": "on",
            "accent_color": "#4f46e5",
            "placement": "bottom-right",
        },
    )

    assert response.status_code == 200, response.content.decode()[-2000:]
    key = WidgetKey.objects.get(organization=alpha.organization, name="Shop")
    assert widget_identity_secret(key) in response.content.decode()


@pytest.mark.django_db
def test_the_api_gives_the_identity_secret_on_creation_and_rotation_only(alpha):
    from tenants.actions import do_create_api_key
    from tests.api.conftest import api_client

    def client(scope: str):
        issued = do_create_api_key(alpha.organization, name="k", scopes=[scope], expires_at=None, created_by="t")
        return api_client(issued.secret)

    with tenant_context(alpha.organization):
        assistant_id = Assistant.objects.get().pk
    writer, admin = client("write"), client("admin")
    created = writer.post("/api/v1/widget-keys/", {"name": "Shop", "assistant_id": assistant_id}, format="json")
    assert created.status_code == 201, created.json()
    secret = created.json()["identity_secret"]
    key = WidgetKey.objects.get(pk=created.json()["id"])
    assert secret == widget_identity_secret(key) and created.json()["identity_secret_hint"] == key.identity_secret_hint

    shown = writer.get(f"/api/v1/widget-keys/{key.pk}/").json()
    assert "identity_secret" not in shown and secret not in str(shown)
    rotate = f"/api/v1/widget-keys/{key.pk}/rotate-identity-secret/"
    assert writer.post(rotate).status_code == 403  # admin scope, as for API keys
    rotated = admin.post(rotate)
    assert rotated.status_code == 200
    key.refresh_from_db()
    assert rotated.json()["identity_secret"] == widget_identity_secret(key) != secret


@pytest.mark.django_db
def test_rotate_encryption_keys_reseals_widget_identity_secrets(alpha, capsys):
    from cryptography.fernet import Fernet
    from django.core.management import call_command
    from django.test import override_settings

    from tenants.actions import do_rotate_widget_identity_secret

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(AURA_ENCRYPTION_KEYS=[old]):
        secret = do_rotate_widget_identity_secret(alpha.widget_key)
    with override_settings(AURA_ENCRYPTION_KEYS=[new, old]):
        call_command("rotate_encryption_keys")

    assert "1 widget identity secret(s) now sealed with the newest key" in capsys.readouterr().out
    with override_settings(AURA_ENCRYPTION_KEYS=[new]):
        assert widget_identity_secret(alpha.widget_key) == secret
