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
