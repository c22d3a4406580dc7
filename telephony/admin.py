"""Tenant admins add their phone numbers (and see the webhook URL to paste into Twilio); staff see every
number and call (read only)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from twilio.base.exceptions import TwilioException

from core.admin_sites import platform_admin, tenant_admin
from telephony.forms import PhoneNumberForm, PlatformPhoneNumberForm
from telephony.models import Call, PhoneNumber
from telephony.queries import status_callback_url, twilio_account, webhook_url
from telephony.twilio_api import point_number_here


@admin.register(PhoneNumber, site=tenant_admin)
class PhoneNumberAdmin(admin.ModelAdmin):
    form = PhoneNumberForm
    list_display = ("number", "account", "record_calls", "is_active", "created_at")
    readonly_fields = ("auth_token_hint", "twilio_setup", "created_at")
    actions = ["point_twilio_here"]

    @admin.action(description="Set these numbers' webhooks in Twilio (through its REST API)")
    def point_twilio_here(self, request: HttpRequest, queryset: QuerySet[PhoneNumber]) -> None:
        for number in queryset:
            account = twilio_account(number)
            if not account.configured:
                self.message_user(request, f"{number}: no Twilio credentials to use.", messages.ERROR)
                continue
            try:
                found = point_number_here(
                    account, number=number.number, voice_url=webhook_url(), status_callback=status_callback_url()
                )
            except TwilioException as exc:
                self.message_user(request, f"{number}: Twilio refused: {exc}"[:300], messages.ERROR)
                continue
            if found:
                self.message_user(request, f"{number}: Twilio now sends its calls here.", messages.SUCCESS)
            else:
                self.message_user(request, f"{number}: not a number of this Twilio account.", messages.ERROR)

    def get_fields(self, request: HttpRequest, obj: PhoneNumber | None = None) -> list[str]:
        base = [
            "number",
            "assistant",
            "account_sid",
            "auth_token",
            "record_calls",
            "remember_callers",
            "transfer_to",
            "call_countries",
            "is_active",
        ]
        return base if obj is None else [*base, "twilio_setup", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PhoneNumber]:
        return super().get_queryset(request).filter(organization=request.tenant)

    def save_model(self, request: HttpRequest, obj: PhoneNumber, form: object, change: bool) -> None:
        obj.organization = request.tenant
        super().save_model(request, obj, form, change)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[PhoneNumber]) -> None:
        for number in queryset:  # one by one, so each number leaves the lookup cache
            number.delete()

    @admin.display(description="Twilio account")
    def account(self, obj: PhoneNumber) -> str:
        return obj.account_sid if obj.uses_own_account else "the platform's"

    @admin.display(description="Set up in Twilio")
    def twilio_setup(self, obj: PhoneNumber) -> str:
        return format_html(
            "<p>In Twilio's console, under <em>Phone Numbers → Manage → Active numbers → {}</em>, "
            "<em>Voice Configuration</em>: <em>A call comes in</em> → <em>Webhook</em>, HTTP POST:</p>"
            "<p><code>{}</code></p>"
            "<p>and <em>Call status changes</em>: <code>{}</code></p>"
            "<p>With credentials stored, the list's action <em>Set these numbers' webhooks in Twilio</em> "
            "does this for you.</p>",
            obj.number,
            webhook_url(),
            status_callback_url(),
        )


@admin.register(PhoneNumber, site=platform_admin)
class PlatformPhoneNumberAdmin(admin.ModelAdmin):
    """Staff assign numbers of the platform's Twilio account (checked in that account) to organizations;
    numbers on an organization's own account are read only here."""

    form = PlatformPhoneNumberForm
    list_display = ("number", "organization", "account", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("number", "organization__slug")

    def has_change_permission(self, request: HttpRequest, obj: PhoneNumber | None = None) -> bool:
        if obj is not None and obj.account_sid:
            return False
        return super().has_change_permission(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[PhoneNumber]) -> None:
        for number in queryset:  # one by one, so each number leaves the lookup cache
            number.delete()

    @admin.display(description="Twilio account")
    def account(self, obj: PhoneNumber) -> str:
        return obj.account_sid or "the platform's"


@admin.register(Call, site=platform_admin)
class CallAdmin(admin.ModelAdmin):
    list_display = ("call_sid", "organization", "direction", "status", "started_at", "duration_s")
    list_filter = ("direction", "status")
    search_fields = ("call_sid", "organization__slug")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
