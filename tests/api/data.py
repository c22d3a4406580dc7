"""Objects of one organization for the API tests: a conversation with turns, a webhook, an invoice."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.models import Invoice
from conversations.models import Conversation, Turn
from tenants.models import Organization
from voice.models import Assistant
from webhooks.actions import do_save_webhook_endpoint
from webhooks.models import WebhookDelivery, WebhookEndpoint


def conversation_with_turns(organization: Organization, *, visitor_id: str = "v-1", interrupted: bool = False) -> str:
    with tenant_context(organization):
        assistant = Assistant.objects.order_by("pk").first()
        now = timezone.now()
        conversation = Conversation.objects.create(
            id=uuid.uuid4(), assistant=assistant, visitor_id=visitor_id, status="ended", ended_at=now
        )
        Turn.objects.create(conversation=conversation, index=0, role="visitor", text="Hi there", started_at=now)
        Turn.objects.create(
            conversation=conversation,
            index=1,
            role="assistant",
            text="Hello, how can I help you today?",
            heard_text="Hello," if interrupted else "Hello, how can I help you today?",
            interrupted=interrupted,
            started_at=now + timedelta(seconds=1),
        )
        return str(conversation.id)


def webhook_endpoint(organization: Organization, url: str = "https://hooks.example.com/aura") -> WebhookEndpoint:
    endpoint = WebhookEndpoint(organization=organization, url=url, events=["conversation.started"])
    endpoint.full_clean(exclude=["organization", "encrypted_secret", "secret_hint"])
    from webhooks.actions import seal_secret

    seal_secret(endpoint, "whsec_test")
    endpoint.save()
    return endpoint


def delivery(endpoint: WebhookEndpoint) -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        organization=endpoint.organization,
        endpoint=endpoint,
        event_id="evt_x",
        event_type="conversation.started",
        body='{"id":"evt_x"}',
    )


def invoice(organization: Organization) -> Invoice:
    zero = Decimal(0)
    return Invoice.objects.create(
        organization=organization,
        period_start=date(2026, 1, 1),
        period_end=date(2026, 2, 1),
        number=f"T-{organization.slug}-{uuid.uuid4().hex[:6]}",
        currency="USD",
        plan_name="Growth",
        subtotal=zero,
        tax_rate=zero,
        tax=zero,
        total=zero,
        provider_cost=zero,
        computed_at=timezone.now(),
    )


__all__ = ["conversation_with_turns", "delivery", "do_save_webhook_endpoint", "invoice", "webhook_endpoint"]
