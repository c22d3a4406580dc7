"""A tenant's own provider keys (encrypted, shown masked), routing rules in the admin, and the
platform admin's provider-health page."""

from __future__ import annotations

import logging
import uuid

import pytest
from asgiref.sync import async_to_sync
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils.html import escape
from django_tenants.utils import tenant_context

from core.crypto import Secret, decrypt, encrypt
from tests.conftest import PASSWORD
from tests.voice.admin_forms import assistant_form_data
from voice.actions import default_providers, do_set_provider_key
from voice.models import Assistant, ProviderKey, RouterPolicy, validate_model_refs
from voice.queries import routing_config, tenant_provider_keys
from voice.router.candidates import Candidate
from voice.router.health import ProviderHealth, shared_health

ALPHA_KEY = "sk-proj-alpha-0123456789abcdefXYZ1"
ALPHA_HINT = "sk-…XYZ1"
NEW_KEY = "sk-proj-alpha-replacement-98765NEW9"
NEW_HINT = "sk-…NEW9"
KEYS_URL = "/admin/voice/providerkey/"
HEALTH_URL = "/admin/provider-health/"


def _fernet_key() -> str:
    return Fernet.generate_key().decode()


def _tenant_admin(tenant) -> Client:
    client = Client(HTTP_HOST=tenant.host)
    response = client.post("/admin/login/", {"username": tenant.admin_email, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[-2000:]
    return client


@pytest.fixture
def alpha_admin(alpha) -> Client:
    return _tenant_admin(alpha)


@pytest.fixture
def beta_admin(beta) -> Client:
    return _tenant_admin(beta)


@pytest.fixture
def staff_client(django_user_model) -> Client:
    django_user_model.objects.create_superuser("staffer", "staffer@aura.example", PASSWORD)
    client = Client(HTTP_HOST="localhost")
    response = client.post("/admin/login/", {"username": "staffer", "password": PASSWORD})
    assert response.status_code == 302
    return client


def _add_alpha_key_through_the_admin(client: Client, alpha) -> ProviderKey:
    response = client.post(f"{KEYS_URL}add/", {"provider": "openai", "api_key": ALPHA_KEY})
    assert response.status_code == 302, response.content.decode()[-3000:]
    with tenant_context(alpha.organization):
        return ProviderKey.objects.get(provider="openai")


# --- Tenant admin: provider keys --------------------------------------------------------------


@pytest.mark.django_db
def test_a_key_added_in_the_admin_is_stored_encrypted_and_shown_only_masked(alpha, alpha_admin):
    key = _add_alpha_key_through_the_admin(alpha_admin, alpha)

    assert key.encrypted_key != ALPHA_KEY
    assert ALPHA_KEY not in key.encrypted_key
    assert decrypt(key.encrypted_key) == ALPHA_KEY
    assert key.key_hint == ALPHA_HINT

    change = alpha_admin.get(f"{KEYS_URL}{key.pk}/change/")
    listing = alpha_admin.get(KEYS_URL)
    for response in (change, listing):
        page = response.content.decode()
        assert response.status_code == 200
        assert ALPHA_KEY not in page
        assert ALPHA_KEY[3:-4] not in page
        assert key.encrypted_key not in page
        assert ALPHA_HINT in page
    assert 'type="password"' in change.content.decode()


@pytest.mark.django_db
def test_saving_the_change_form_with_no_key_keeps_it_and_a_new_key_replaces_it(alpha, alpha_admin):
    key = _add_alpha_key_through_the_admin(alpha_admin, alpha)
    sealed = key.encrypted_key
    change_url = f"{KEYS_URL}{key.pk}/change/"

    response = alpha_admin.post(change_url, {"provider": "openai", "api_key": ""})
    assert response.status_code == 302, response.content.decode()[-3000:]
    with tenant_context(alpha.organization):
        kept = ProviderKey.objects.get(pk=key.pk)
    assert kept.encrypted_key == sealed
    assert decrypt(kept.encrypted_key) == ALPHA_KEY
    assert kept.key_hint == ALPHA_HINT

    response = alpha_admin.post(change_url, {"provider": "openai", "api_key": f"  {NEW_KEY}\n"})
    assert response.status_code == 302, response.content.decode()[-3000:]
    with tenant_context(alpha.organization):
        replaced = ProviderKey.objects.get(pk=key.pk)
        assert ProviderKey.objects.count() == 1
    assert decrypt(replaced.encrypted_key) == NEW_KEY
    assert replaced.key_hint == NEW_HINT
    page = alpha_admin.get(change_url).content.decode()
    assert NEW_KEY not in page and ALPHA_KEY not in page
    assert NEW_HINT in page


@pytest.mark.django_db
def test_moving_a_key_to_another_provider_requires_that_providers_key(alpha, alpha_admin):
    key = _add_alpha_key_through_the_admin(alpha_admin, alpha)
    response = alpha_admin.post(f"{KEYS_URL}{key.pk}/change/", {"provider": "xai", "api_key": ""})
    assert response.status_code == 200
    assert "Enter the key for the new provider." in response.content.decode()
    with tenant_context(alpha.organization):
        assert ProviderKey.objects.get(pk=key.pk).provider == "openai"


@pytest.mark.django_db(transaction=True)
def test_reencrypting_outside_a_transaction_takes_its_own(alpha):
    from voice.actions import do_reencrypt_provider_keys

    with tenant_context(alpha.organization):
        do_set_provider_key(provider="openai", api_key=ALPHA_KEY)
        assert do_reencrypt_provider_keys() == 1
        assert decrypt(ProviderKey.objects.get(provider="openai").encrypted_key) == ALPHA_KEY


@pytest.mark.django_db
def test_a_new_key_is_required_on_the_add_form(alpha, alpha_admin):
    response = alpha_admin.post(f"{KEYS_URL}add/", {"provider": "openai", "api_key": "   "})

    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    with tenant_context(alpha.organization):
        assert not ProviderKey.objects.exists()


@pytest.mark.django_db
def test_alphas_key_is_invisible_to_beta(alpha, beta, alpha_admin, beta_admin):
    key = _add_alpha_key_through_the_admin(alpha_admin, alpha)

    listing = beta_admin.get(KEYS_URL)
    assert listing.status_code == 200
    assert ALPHA_HINT not in listing.content.decode()
    change = beta_admin.get(f"{KEYS_URL}{key.pk}/change/")
    assert change.status_code in (302, 404)
    followed = beta_admin.get(f"{KEYS_URL}{key.pk}/change/", follow=True).content.decode()
    assert ALPHA_HINT not in followed and ALPHA_KEY not in followed

    with tenant_context(beta.organization):
        assert tenant_provider_keys() == {}
    with tenant_context(alpha.organization):
        assert tenant_provider_keys() == {"openai": ALPHA_KEY}


# --- Routing configuration with the tenant's keys ---------------------------------------------


@pytest.mark.django_db
def test_routing_config_carries_the_tenants_key_as_a_masked_secret(alpha):
    with tenant_context(alpha.organization):
        do_set_provider_key(provider="openai", api_key=ALPHA_KEY)
        config = routing_config(Assistant.objects.get())

    secret = config.tenant_keys["openai"]
    assert isinstance(secret, Secret)
    assert secret == ALPHA_KEY
    assert ALPHA_KEY not in repr(secret)
    assert ALPHA_KEY not in repr(config)
    assert ALPHA_KEY not in f"{config.tenant_keys}"


@pytest.mark.django_db
def test_a_key_sealed_by_a_removed_encryption_key_is_skipped_not_a_crash(alpha, caplog):
    new = _fernet_key()
    with tenant_context(alpha.organization):
        do_set_provider_key(provider="openai", api_key=ALPHA_KEY)  # sealed with the current (soon removed) key
        with override_settings(AURA_ENCRYPTION_KEYS=[new]):
            do_set_provider_key(provider="xai", api_key="xai-alpha-key-0000abcd")
            with caplog.at_level(logging.ERROR, logger="voice.queries"):
                config = routing_config(Assistant.objects.get())

    assert dict(config.tenant_keys) == {"xai": "xai-alpha-key-0000abcd"}
    assert "openai key" in caplog.text and "cannot be decrypted" in caplog.text
    assert ALPHA_KEY not in caplog.text


@pytest.mark.django_db
def test_rotate_encryption_keys_reseals_every_organizations_keys(alpha, beta, capsys):
    old, new = _fernet_key(), _fernet_key()
    with override_settings(AURA_ENCRYPTION_KEYS=[old]), tenant_context(alpha.organization):
        do_set_provider_key(provider="openai", api_key=ALPHA_KEY)
        before = ProviderKey.objects.get().encrypted_key

    with override_settings(AURA_ENCRYPTION_KEYS=[new, old]):
        call_command("rotate_encryption_keys")
    out = capsys.readouterr().out

    assert f"{alpha.organization.schema_name}: 1 key(s) re-encrypted" in out
    assert "1 provider key(s) now sealed with the newest key" in out
    assert beta.organization.schema_name not in out  # nothing to do there
    with override_settings(AURA_ENCRYPTION_KEYS=[new]), tenant_context(alpha.organization):
        after = ProviderKey.objects.get().encrypted_key
        assert after != before
        assert decrypt(after) == ALPHA_KEY
        assert tenant_provider_keys() == {"openai": ALPHA_KEY}


@pytest.mark.django_db
def test_rotate_encryption_keys_stops_with_a_readable_error_when_a_key_is_missing(alpha):
    from django.core.management.base import CommandError

    with override_settings(AURA_ENCRYPTION_KEYS=[_fernet_key()]), tenant_context(alpha.organization):
        do_set_provider_key(provider="openai", api_key=ALPHA_KEY)

    with override_settings(AURA_ENCRYPTION_KEYS=[_fernet_key()]), pytest.raises(CommandError) as caught:
        call_command("rotate_encryption_keys")
    assert alpha.organization.schema_name in str(caught.value)
    assert "Put back the key" in str(caught.value)


# --- Assistant admin: routing rules in words, validated fallbacks ----------------------------


@pytest.mark.django_db
def test_the_assistant_page_shows_the_routing_rules_in_words(alpha, alpha_admin):
    with tenant_context(alpha.organization):
        assistant = Assistant.objects.get()
    url = f"/admin/voice/assistant/{assistant.pk}/change/"

    response = alpha_admin.post(
        url,
        assistant_form_data(
            assistant,
            router_policy=RouterPolicy.SMART,
            smart_strong_llm="openai:gpt-4o",
            llm_fallbacks=["xai:grok-3-mini"],
        ),
    )
    assert response.status_code == 302, response.content.decode()[-4000:]
    with tenant_context(alpha.organization):
        saved = Assistant.objects.get()
    assert saved.router_policy == "smart"
    assert saved.smart_strong_llm == "openai:gpt-4o"
    assert saved.llm_fallbacks == ["xai:grok-3-mini"]

    page = alpha_admin.get(url).content.decode()
    assert "How this assistant routes" in page
    assert "strong model openai:gpt-4o" in page
    assert f"primary model {saved.llm_provider}:{saved.llm_model}" in page
    assert "Fallbacks: xai:grok-3-mini." in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "posted_as", "posted"),
    [
        ("llm_fallbacks", "llm_fallbacks_0", "gpt-4o"),  # not "provider:model"
        ("llm_fallbacks", "llm_fallbacks_1", "acme:x"),  # no such provider
        ("llm_fallbacks", "llm_fallbacks_0", "openai:gpt-5-imaginary"),  # a model OpenAI does not offer
        ("stt_fallbacks", "stt_fallbacks_0", "openai:gpt-4o-mini"),  # a chat model is no speech-to-text
        ("tts_fallbacks", "tts_fallbacks_0", "local:pocketsphinx-en-us"),  # speech-to-text is no voice
        ("smart_strong_llm", "smart_strong_llm", "gpt-4o"),
    ],
)
def test_the_admin_refuses_a_model_it_does_not_offer(alpha, alpha_admin, field, posted_as, posted):
    """Fallbacks and the strong model are chosen from what the providers offer; a hand-made post is refused."""
    with tenant_context(alpha.organization):
        assistant = Assistant.objects.get()
    data = {**assistant_form_data(assistant, router_policy=RouterPolicy.SMART), posted_as: posted}

    response = alpha_admin.post(f"/admin/voice/assistant/{assistant.pk}/change/", data)

    page = response.content.decode()
    assert response.status_code == 200  # the form again, with the error; the routing rules do not crash it
    assert escape(f"Select a valid choice. {posted} is not one of the available choices.") in page
    with tenant_context(alpha.organization):
        unchanged = Assistant.objects.get()
    assert getattr(unchanged, field) == getattr(assistant, field)
    assert unchanged.router_policy == assistant.router_policy


# --- Platform admin: provider health ----------------------------------------------------------


def _record_failures(candidate: Candidate, count: int, error: str) -> None:
    health = ProviderHealth(failures_to_open=3, cooldown_s=30.0)
    for _ in range(count):
        async_to_sync(health.record_failure)(candidate, error)


@pytest.mark.django_db
def test_the_platform_index_links_to_provider_health(staff_client):
    page = staff_client.get("/admin/").content.decode()

    assert "Dashboards" in page  # the pages that are not models: a section of the index and the sidebar
    assert f'<a href="{HEALTH_URL}">Provider health</a>' in page or f'href="{HEALTH_URL}"' in page


@pytest.mark.django_db
def test_provider_health_lists_breakers_and_reset_clears_one(staff_client):
    down = Candidate("openai", f"down-{uuid.uuid4().hex[:8]}")
    flaky = Candidate("xai", f"flaky-{uuid.uuid4().hex[:8]}")
    _record_failures(down, 3, "unavailable: 503 from upstream")
    _record_failures(flaky, 1, "timeout: no first token")

    response = staff_client.get(HEALTH_URL)
    page = response.content.decode()
    assert response.status_code == 200
    assert down.key in page and flaky.key in page
    row = page[page.index(down.key) : page.index("</tr>", page.index(down.key))]
    assert '<strong class="breaker-open">open</strong>' in row
    assert "unavailable: 503 from upstream" in row
    assert "<td>3</td>" in row
    assert "UTC" in row  # open until
    flaky_row = page[page.index(flaky.key) : page.index("</tr>", page.index(flaky.key))]
    assert '<strong class="breaker-closed">closed</strong>' in flaky_row
    assert "timeout: no first token" in flaky_row

    response = staff_client.post(HEALTH_URL, {"reset": down.key})
    assert response.status_code == 302
    assert response["Location"] == HEALTH_URL

    assert down.key not in shared_health()
    assert flaky.key in shared_health()
    page = staff_client.get(HEALTH_URL).content.decode()
    # The message (the admin's template capitalizes it: "Openai:…").
    assert f"The breaker of {down.key} is reset to closed.".lower() in page.lower()
    assert f'value="{down.key}"' not in page
    assert "unavailable: 503 from upstream" not in page
    assert flaky.key in page


@pytest.mark.django_db
def test_provider_health_with_no_breakers_says_so(staff_client):
    page = staff_client.get(HEALTH_URL).content.decode()

    assert "No provider has been called yet." in page


@pytest.mark.django_db
def test_an_anonymous_visitor_is_sent_to_login():
    down = Candidate("openai", f"down-{uuid.uuid4().hex[:8]}")
    _record_failures(down, 3, "boom")
    client = Client(HTTP_HOST="localhost")

    response = client.get(HEALTH_URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")

    response = client.post(HEALTH_URL, {"reset": down.key})
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert down.key in shared_health()  # an anonymous reset does nothing


@pytest.mark.django_db
def test_a_tenant_admin_cannot_reach_provider_health(alpha, alpha_admin):
    down = Candidate("openai", f"down-{uuid.uuid4().hex[:8]}")
    _record_failures(down, 3, "boom")

    response = alpha_admin.get(HEALTH_URL)
    assert response.status_code == 404
    assert down.key not in response.content.decode()
    assert alpha_admin.post(HEALTH_URL, {"reset": down.key}).status_code == 404
    assert down.key in shared_health()
    assert "Provider health" not in alpha_admin.get("/admin/").content.decode()

    # Alpha's session is worth nothing on the platform host either.
    platform = Client(HTTP_HOST="localhost")
    platform.cookies["sessionid"] = alpha_admin.cookies["sessionid"].value
    response = platform.get(HEALTH_URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# --- Defaults for a new assistant -------------------------------------------------------------


@override_settings(OPENAI_API_KEY="sk-platform-0000", XAI_API_KEY="")
def test_default_providers_with_an_openai_key_use_openai_with_a_fallback_policy():
    defaults = default_providers()

    assert defaults["llm_provider"] == "openai"
    assert defaults["llm_model"] == "gpt-4o-mini"
    assert defaults["stt_provider"] == defaults["tts_provider"] == "openai"
    assert defaults["router_policy"] == RouterPolicy.FALLBACK
    assert defaults["llm_fallbacks"] == []
    for name in ("llm_fallbacks", "stt_fallbacks", "tts_fallbacks"):
        validate_model_refs(defaults[name])


@override_settings(OPENAI_API_KEY="sk-platform-0000", XAI_API_KEY="xai-platform-0000")
def test_default_providers_with_both_keys_fall_back_to_xai():
    defaults = default_providers()

    assert defaults["llm_provider"] == "openai"
    assert defaults["llm_fallbacks"] == ["xai:grok-3-mini"]


@override_settings(OPENAI_API_KEY="", XAI_API_KEY="xai-platform-0000")
def test_default_providers_with_only_an_xai_key():
    assert default_providers() == {
        "llm_provider": "xai",
        "llm_model": "grok-3-mini",
        "router_policy": RouterPolicy.FALLBACK,
    }


@override_settings(OPENAI_API_KEY="", XAI_API_KEY="")
def test_default_providers_with_no_key_are_empty():
    assert default_providers() == {}


@pytest.mark.django_db
def test_a_key_sealed_under_the_configured_key_is_not_the_key(alpha):
    with tenant_context(alpha.organization):
        stored = do_set_provider_key(provider="openai", api_key=f"  {ALPHA_KEY} ")
        again = do_set_provider_key(provider="openai", api_key=ALPHA_KEY)
        assert ProviderKey.objects.count() == 1
    assert stored.pk == again.pk
    assert stored.encrypted_key != again.encrypted_key  # re-sealed, fresh token
    assert decrypt(again.encrypted_key) == ALPHA_KEY
    assert encrypt(ALPHA_KEY) != again.encrypted_key
    with pytest.raises(ValueError, match="empty"):
        do_set_provider_key(provider="openai", api_key="   ")
