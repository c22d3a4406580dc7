"""A new organization's admin in a real browser: from open_organization, through the onboarding checklist,
to a first conversation typed into the assistant's own "Try it" widget. axe-core on every admin page walked;
screenshots in docs/screenshots/."""

from __future__ import annotations

import re
import uuid

import pytest
from django_tenants.utils import tenant_context

from aura.workflows.organizations import open_organization
from conversations.models import Conversation
from tenants.actions import NewOrganization
from tenants.models import WidgetKey
from tests.widget.test_widget_browser import (  # noqa: F401 - fixtures and helpers shared with the widget tests
    _assert_accessible,
    _browser,
    _events,
    _orm_beside_playwright,
    _record_socket,
    _screenshot,
    _wait,
)
from voice.models import Assistant

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PASSWORD = "a-long-enough-password-7"
SITE = "https://bakery.example"


def _checklist(page) -> dict[str, bool]:
    items = page.locator("#aura-onboarding li").all()
    return {
        item.get_attribute("id").removeprefix("onboarding-"): item.get_attribute("data-done") == "true"
        for item in items
    }


def _accessible(page, name: str) -> None:
    _assert_accessible(page, name, context=None)


def test_a_new_organization_goes_from_the_checklist_to_a_first_conversation(daphne_server):
    slug = f"bake-{uuid.uuid4().hex[:6]}"  # tenant schemas outlive a test's flush: a fresh one each run
    organization = open_organization(
        NewOrganization(name="Crumb Bakery", slug=slug, admin_email=f"owner@{slug}.example", admin_password=PASSWORD)
    )
    with tenant_context(organization):
        assistant = Assistant.objects.get()
    key = WidgetKey.objects.get(organization=organization)
    admin = f"http://{slug}.localhost:{daphne_server.port}/admin/"

    with _browser(None) as page:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=admin.removesuffix("/admin/"))
        page.goto(admin)
        page.fill("#id_username", f"owner@{slug}.example")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")

        # 1. Home: nothing done yet; the widget key exists and waits for its site.
        page.wait_for_selector("#aura-onboarding")
        assert _checklist(page) == {
            "assistant": False,
            "widget": False,
            "conversation": False,
            "knowledge": False,
            "phone": False,
        }
        assert "waiting for its site" in page.locator("#onboarding-widget").inner_text()
        _screenshot(page, "tenant-home-checklist")
        _accessible(page, "tenant home, new organization")
        page.click("#aura-onboarding .aura-copy")
        _wait(lambda: page.locator("#aura-onboarding .aura-copy-status").inner_text() == "Copied.", page=page)
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied.startswith("<script src=") and f'data-key="{key.key}"' in copied and "\n" not in copied

        # 2. The assistant: what a business owner sets first; the advanced settings are collapsed.
        page.click("#onboarding-assistant a")
        page.wait_for_selector("#id_greeting")
        assert not page.locator("#id_end_silence_ms").is_visible()  # turn-taking: collapsed
        page.fill("#id_greeting", "Hi! Crumb Bakery here. Looking for bread or a cake?")
        page.fill("#id_instructions", "You answer for Crumb Bakery. Be warm and brief.")
        # Voices and models follow the chosen provider (the server checks them again on save).
        page.select_option("#id_tts_provider", "openai")
        voices = page.locator("#id_voice option").evaluate_all("all => all.map(o => o.value)")
        assert "coral" in voices and len(voices) == 11
        assert page.input_value("#id_tts_model") == "gpt-4o-mini-tts"
        assert "local" not in page.locator("#id_tts_provider option").evaluate_all("all => all.map(o => o.value)")
        page.select_option("#id_tts_provider", "simulated")
        assert page.input_value("#id_voice") == "alloy" and page.input_value("#id_tts_model") == "simulated-tts"
        page.click(".aura-voice-sample")
        status = page.locator(".aura-voice-sample-status")
        _wait(lambda: status.inner_text() in ("Playing…", "Played."), page=page)
        page.evaluate("window.scrollTo(0, 0)")
        headers = page.locator(".module caption, fieldset .fieldset-heading:not(summary *)").evaluate_all(
            "all => [...new Set(all.map(e => getComputedStyle(e).backgroundColor))]"
        )
        assert headers == ["rgb(55, 48, 163)"], headers  # one colour for every section header (aura.css --primary)
        _screenshot(page, "assistant-form")
        _accessible(page, "assistant form")
        page.click("input[name=_continue]")
        page.wait_for_selector(".messagelist .success")

        # 3. The widget key: add the site; the snippet is whole, with its copy button.
        page.goto(admin)
        assert _checklist(page)["assistant"] is True
        page.click("#onboarding-widget a")
        page.fill("#id_origins", page.input_value("#id_origins") + "\n" + SITE)
        page.click("input[name=_continue]")
        page.wait_for_selector(".messagelist .success")
        snippet = page.locator(".aura-snippet code")
        assert snippet.evaluate("e => getComputedStyle(e).wordBreak") == "keep-all"
        _screenshot(page, "widget-key")
        _accessible(page, "widget key")

        # 4. A first conversation, typed into the assistant's own widget on its page ("Try it").
        page.goto(admin)
        assert _checklist(page)["widget"] is True
        frames = _record_socket(page)
        page.click("#onboarding-conversation a")
        page.wait_for_selector("aura-voice-widget >> .launcher")
        page.click("aura-voice-widget >> .launcher")
        _wait(lambda: _events(frames, "received", "session.created"), page=page)
        page.fill("aura-voice-widget >> input", "Do you have sourdough?")
        page.press("aura-voice-widget >> input", "Enter")
        _wait(lambda: [e for e in _events(frames, "received", "response.done") if e["response_id"] == 2], page=page)
        greeting = _events(frames, "received", "response.done")[0]["text"]
        assert greeting == "Hi! Crumb Bakery here. Looking for bread or a cake?"  # this assistant, as saved
        page.locator("#try-it").scroll_into_view_if_needed()
        _screenshot(page, "assistant-try-it")
        with tenant_context(organization):
            assert Conversation.objects.filter(assistant_id=assistant.pk).exists()

        # 5. Home again: the checklist ticked itself.
        page.goto(admin)
        assert _checklist(page) == {
            "assistant": True,
            "widget": True,
            "conversation": True,
            "knowledge": False,
            "phone": False,
        }
        assert re.search(r"3 of 4 done", page.locator("#aura-onboarding .progress").inner_text())
        _accessible(page, "tenant home, three steps done")

        # 6. Opening hours day by day, and a searchable time zone.
        page.goto(admin + "settings/")
        page.fill("input[name=business_hours_sat_0_opens]", "10:00")
        page.fill("input[name=business_hours_sat_0_closes]", "14:00")
        page.fill("#id_time_zone", "Europe/Paris")
        _accessible(page, "organization settings")
        _screenshot(page, "organization-settings")
        page.click("input[type=submit]")
        page.wait_for_selector(".messagelist .success")
        organization.refresh_from_db()
        assert organization.business_hours["sat"] == [["10:00", "14:00"]] and organization.time_zone == "Europe/Paris"

        # 7. The conversations list stays on screen: a long visitor id is cut, whole on hover.
        page.set_viewport_size({"width": 1366, "height": 768})  # the commonest laptop screen
        page.goto(admin + "conversations/conversation/")
        visitor = page.locator("td.field-visitor .aura-truncate").first
        assert visitor.get_attribute("title").startswith("anon:")  # the server-minted id, in full
        _screenshot(page, "tenant-conversations")
        last_column = page.locator("#result_list thead th").last.bounding_box()
        assert (
            last_column["x"] + last_column["width"]
            <= page.locator("#changelist .results").bounding_box()["x"]
            + (page.locator("#changelist .results").bounding_box()["width"])
        )
        _accessible(page, "conversations list")
        _screenshot(page, "tenant-conversations")

        # 8. The transcript wraps inside the page.
        page.set_viewport_size({"width": 1000, "height": 720})
        page.click("#result_list tbody th a, #result_list tbody td.field-started_at a")
        transcript = page.locator("table.aura-transcript")
        assert transcript.evaluate(
            "t => t.getBoundingClientRect().right <= t.closest('fieldset').getBoundingClientRect().right"
        )
        _accessible(page, "conversation transcript")
