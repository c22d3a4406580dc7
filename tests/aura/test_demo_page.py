"""The platform's demo page embeds the demo organization's widget, as a customer's site would."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client

from tenants.queries import organization_by_slug, widget_keys_of


@pytest.mark.django_db
def test_the_demo_page_embeds_the_demo_key_and_its_script_is_served(settings):
    call_command("seed_demo")
    key = widget_keys_of(organization_by_slug("demo"))[0]

    page = Client(HTTP_HOST="localhost").get("/demo/").content.decode()

    assert f'<script src="/static/aura/widget.js" data-key="{key.key}"' in page
    assert key.allows_origin(settings.AURA_PLATFORM_URL)
    assert Client(HTTP_HOST="localhost").get("/static/aura/widget.js").status_code == 200


@pytest.mark.django_db
def test_seeding_twice_changes_nothing():
    call_command("seed_demo")
    call_command("seed_demo")

    keys = widget_keys_of(organization_by_slug("demo"))
    assert len(keys) == 1
    assert len(keys[0].allowed_origins) == 2


@pytest.mark.django_db
def test_the_demo_assistant_has_hours_tools_and_a_knowledge_base(settings, tmp_path):
    from django_tenants.utils import tenant_context

    from knowledge.models import Document
    from voice.models import Assistant, BuiltinTool

    settings.MEDIA_ROOT = tmp_path
    call_command("seed_demo")
    demo = organization_by_slug("demo")

    assert demo.time_zone == "Europe/Paris" and demo.business_hours["sun"] == [["11:00", "22:00"]]
    with tenant_context(demo):
        assert Assistant.objects.get(is_default=True).tools == list(BuiltinTool.values)
        assert Document.objects.get(title="Demo Bistro FAQ").passage_count > 0
