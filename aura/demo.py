"""The platform's demo page: a stand-in for a tenant's website with the widget embedded."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.templatetags.static import static

from aura.management.commands.seed_demo import DEMO_SLUG
from tenants.queries import organization_by_slug, widget_keys_of
from voice.providers.registry import provider_mode_summary


def demo_page(request: HttpRequest) -> HttpResponse:
    organization = organization_by_slug(DEMO_SLUG)
    keys = [key for key in widget_keys_of(organization) if key.is_active] if organization else []
    return render(
        request,
        "demo/index.html",
        {
            "key": keys[0].key if keys else "",
            "platform_url": settings.AURA_PLATFORM_URL,
            "static_base": static("aura/"),
            "simulated": provider_mode_summary().startswith("SIMULATED"),
        },
    )
