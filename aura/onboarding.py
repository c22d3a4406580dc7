"""The onboarding checklist on a tenant admin's home: what to do first, each step ticked from the
organization's real state (nothing is stored about the checklist itself), each linking to where to do it.

It reads several apps (voice, tenants, conversations, knowledge, telephony), so it lives in the
composition root and is registered on the tenant admin's index (``core.admin_sites.TenantAdminSite.index_panels``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db import connection
from django.http import HttpRequest
from django.urls import reverse

from conversations.models import Conversation
from knowledge.models import Document
from telephony.models import PhoneNumber
from tenants.hosts import domain_for_slug
from tenants.models import WidgetKey, normalize_origin
from voice.actions import default_greeting
from voice.admin import embed_snippet
from voice.models import Assistant


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    done: bool
    state: str  # in words: what is true now
    link: str
    action: str  # the link's text: what to do there
    optional: bool = False


def onboarding_steps(organization_name: str) -> tuple[list[Step], WidgetKey | None]:
    assistant = Assistant.objects.filter(is_default=True).first() or Assistant.objects.first()
    assistant_url = (
        reverse("tenant_admin:voice_assistant_change", args=[assistant.pk])
        if assistant
        else reverse("tenant_admin:voice_assistant_add")
    )
    fresh = Assistant()  # the model's defaults
    default_greetings = {fresh.greeting, default_greeting(organization_name)}
    configured = assistant is not None and (
        assistant.instructions.strip() != fresh.instructions or assistant.greeting not in default_greetings
    )
    keys = list(WidgetKey.objects.filter(organization_id=connection.tenant.pk, is_active=True).order_by("pk"))
    own = domain_for_slug(connection.tenant.slug)  # this admin's host (any port): not the organization's site
    sites = {key.pk: [o for o in key.allowed_origins if urlsplit(normalize_origin(o)).hostname != own] for key in keys}
    with_site = next((key for key in keys if sites[key.pk]), None)
    key = with_site or (keys[0] if keys else None)
    if with_site:
        key_state = f"“{with_site.name}” is allowed on {', '.join(sites[with_site.pk])}."
    elif key:
        key_state = f"Your widget key “{key.name}” is ready and waiting for its site: add your website's address."
    else:
        key_state = "No active widget key yet."
    key_url = (
        reverse("tenant_admin:tenants_widgetkey_change", args=[key.pk])
        if key
        else reverse("tenant_admin:tenants_widgetkey_add")
    )
    conversations = Conversation.objects.count()
    phone_numbers = PhoneNumber.objects.filter(organization_id=connection.tenant.pk).count()
    documents = Document.objects.count()
    steps = [
        Step(
            "assistant",
            "Set up your assistant",
            configured,
            "Greeting and instructions are your own."
            if configured
            else "It still has the default greeting and instructions: tell it about your business.",
            assistant_url,
            "Edit the assistant",
        ),
        Step("widget", "Put the widget on your site", bool(with_site), key_state, key_url, "Add your site"),
        Step(
            "conversation",
            "Have a first conversation",
            conversations > 0,
            f"{conversations} conversation(s) so far." if conversations else "Nobody has talked to it yet.",
            assistant_url + "#try-it" if assistant else reverse("tenant_admin:conversations_conversation_changelist"),
            "Try it",
        ),
        Step(
            "knowledge",
            "Upload what it should know",
            documents > 0,
            f"{documents} document(s) in the knowledge base."
            if documents
            else "Menus, prices, policies, FAQs: the assistant searches them to answer.",
            reverse("tenant_admin:knowledge_document_add"),
            "Add a document",
        ),
        Step(
            "phone",
            "Answer phone calls (optional)",
            phone_numbers > 0,
            f"{phone_numbers} phone number(s)." if phone_numbers else "Connect a Twilio number to the assistant.",
            reverse("tenant_admin:telephony_phonenumber_add"),
            "Add a phone number",
            optional=True,
        ),
    ]
    return steps, key


def onboarding_panel(request: HttpRequest) -> dict[str, object]:
    tenant = getattr(request, "tenant", None)
    if tenant is None or not request.user.has_perm("voice.view_assistant"):
        return {}
    steps, key = onboarding_steps(tenant.name)
    required = [step for step in steps if not step.optional]
    return {
        "onboarding_steps": steps,
        "onboarding_done": sum(step.done for step in required),
        "onboarding_total": len(required),
        "onboarding_snippet": embed_snippet(key) if key else "",
    }
