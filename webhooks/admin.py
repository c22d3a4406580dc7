"""Tenant admins subscribe URLs, see the signing secret, send a test event, and follow and replay deliveries.
Platform staff see every delivery (read only)."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils.html import format_html

from core.admin_sites import platform_admin, tenant_admin
from webhooks.actions import (
    NewEndpoint,
    do_replay_delivery,
    do_roll_webhook_secret,
    do_save_webhook_endpoint,
    do_send_ping,
)
from webhooks.forms import WebhookEndpointForm
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.queries import endpoint_secret


@admin.register(WebhookEndpoint, site=tenant_admin)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("url", "event_list", "is_active", "created_at")
    readonly_fields = ("signing_secret", "created_at", "updated_at")
    actions = ["send_ping", "roll_secret"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookEndpoint]:
        return super().get_queryset(request).filter(organization=request.tenant)

    def get_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> list[str]:
        base = ["url", "description", "events", "is_active"]
        return base if obj is None else [*base, "signing_secret", "created_at", "updated_at"]

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: ModelForm, change: bool) -> None:
        obj.organization = request.tenant
        try:
            saved = do_save_webhook_endpoint(obj)
        except ValidationError as exc:  # the URL stopped passing the guard between clean and save
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return
        if isinstance(saved, NewEndpoint):
            messages.info(request, f"Signing secret: {saved.secret} (also shown on the endpoint's page).")

    @admin.display(description="Events")
    def event_list(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.events)

    @admin.display(description="Signing secret")
    def signing_secret(self, obj: WebhookEndpoint) -> str:
        if not obj.pk:
            return "—"
        return format_html(
            "<details><summary>Reveal ({})</summary><code>{}</code></details>", obj.secret_hint, endpoint_secret(obj)
        )

    @admin.action(description="Send a test event (ping)")
    def send_ping(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            do_send_ping(endpoint)
        self.message_user(request, f"Queued a ping to {len(queryset)} endpoint(s); see Webhook deliveries.")

    @admin.action(description="Roll the signing secret")
    def roll_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            do_roll_webhook_secret(endpoint)
        self.message_user(request, "New secrets are in force; open an endpoint to reveal its secret.")


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "duration_ms", "status_code", "succeeded", "error", "response_body")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class _DeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "event_type", "endpoint", "status", "attempt_count", "last_status_code")
    list_filter = ("status", "event_type")
    readonly_fields = (
        "event_id",
        "event_type",
        "endpoint",
        "status",
        "attempt_count",
        "next_attempt_at",
        "last_status_code",
        "replay_of",
        "created_at",
        "completed_at",
        "pretty_body",
    )
    exclude = ("body", "organization")
    inlines = [WebhookAttemptInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="Body")
    def pretty_body(self, obj: WebhookDelivery) -> str:
        return format_html("<pre>{}</pre>", json.dumps(json.loads(obj.body), indent=2, ensure_ascii=False))


@admin.register(WebhookDelivery, site=tenant_admin)
class WebhookDeliveryAdmin(_DeliveryAdmin):
    actions = ["replay"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        return super().get_queryset(request).filter(organization=request.tenant).select_related("endpoint")

    @admin.action(description="Replay: send the selected events again")
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        for delivery in queryset:
            do_replay_delivery(delivery)
        self.message_user(request, f"Queued {len(queryset)} replay(s).")


@admin.register(WebhookDelivery, site=platform_admin)
class PlatformWebhookDeliveryAdmin(_DeliveryAdmin):
    list_display = ("created_at", "organization", "event_type", "endpoint", "status", "attempt_count")
    exclude = ("body",)
