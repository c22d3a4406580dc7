"""Writes to assistants and provider keys. Run inside the tenant's schema."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from core.crypto import encrypt, mask, reencrypt
from voice.models import Assistant, BuiltinTool, HttpTool, ProviderKey, RouterPolicy, same_destination


def default_providers() -> dict[str, object]:
    """What a new assistant starts with: the platform's providers where a key is configured, else the
    simulated ones (the demo works with no key at all)."""
    if settings.OPENAI_API_KEY:
        return {
            "llm_provider": "openai",
            "llm_model": "gpt-4o-mini",
            "stt_provider": "openai",
            "stt_model": "gpt-4o-mini-transcribe",
            "tts_provider": "openai",
            "tts_model": "gpt-4o-mini-tts",
            "router_policy": RouterPolicy.FALLBACK,
            "llm_fallbacks": ["xai:grok-3-mini"] if settings.XAI_API_KEY else [],
            "stt_fallbacks": ["local:pocketsphinx-en-us"],
            "tts_fallbacks": ["simulated:simulated-tts"],
        }
    if settings.XAI_API_KEY:
        return {"llm_provider": "xai", "llm_model": "grok-3-mini", "router_policy": RouterPolicy.FALLBACK}
    return {}


@transaction.atomic
def do_create_default_assistant(*, organization_name: str) -> Assistant:
    """A new organization's first assistant: it answers opening-hours questions and searches the knowledge
    base from the start (both harmless with nothing set up: default hours, an empty base)."""
    return Assistant.objects.create(
        name=f"{organization_name} assistant",
        greeting=default_greeting(organization_name),
        is_default=True,
        tools=[tool.value for tool in DEFAULT_TOOLS],
        **default_providers(),
    )


DEFAULT_TOOLS = (BuiltinTool.BUSINESS_HOURS, BuiltinTool.SEARCH_KNOWLEDGE)


def default_greeting(organization_name: str) -> str:
    return f"Hello, thanks for reaching {organization_name}. How can I help?"


def do_set_provider_key(*, provider: str, api_key: str) -> ProviderKey:
    """Store (or replace) the organization's own key for ``provider``, encrypted."""
    api_key = api_key.strip()
    if not api_key:
        raise ValueError("The key is empty.")
    key = ProviderKey.objects.filter(provider=provider).first() or ProviderKey(provider=provider)
    seal_provider_key(key, api_key)
    key.save()
    return key


def seal_provider_key(key: ProviderKey, api_key: str) -> None:
    """Put ``api_key`` into ``key``, encrypted, with its masked hint (the caller saves)."""
    key.encrypted_key = encrypt(api_key)
    key.key_hint = mask(api_key)


@transaction.atomic
def do_reencrypt_provider_keys() -> int:
    """Re-seal every key of this organization with the newest encryption key. Returns how many."""
    count = 0
    for key in ProviderKey.objects.select_for_update():
        key.encrypted_key = reencrypt(key.encrypted_key)
        key.save(update_fields=["encrypted_key", "updated_at"])
        count += 1
    return count


class AssistantInUseError(Exception):
    """The assistant cannot be deleted: a widget key or a conversation still refers to it."""


@transaction.atomic
def do_save_assistant(assistant: Assistant) -> Assistant:
    """Create or update an assistant, validated like the admin form (routing refs, base URL guard).

    Making it the default takes the mark from the previous default (only one may hold it).
    """
    assistant.full_clean(validate_constraints=False)
    if assistant.is_default:
        Assistant.objects.filter(is_default=True).exclude(pk=assistant.pk).update(is_default=False)
    assistant.save()
    return assistant


@transaction.atomic
def do_delete_assistant(assistant: Assistant) -> None:
    """Delete an assistant nothing refers to; its conversations and widget keys must go first."""
    from django.db import connection

    from conversations.models import Conversation
    from tenants.models import WidgetKey

    if WidgetKey.objects.filter(organization_id=connection.tenant.pk, assistant_id=assistant.pk).exists():
        raise AssistantInUseError("A widget key uses this assistant; point it at another assistant first.")
    if Conversation.objects.filter(assistant_id=assistant.pk).exists():
        raise AssistantInUseError("This assistant has conversations; delete them first.")
    assistant.delete()


@transaction.atomic
def do_save_http_tool(
    tool: HttpTool, *, assistants: list[Assistant] | None = None, headers_set: bool = True
) -> HttpTool:
    """Create or update a tenant's HTTP tool, validated like the admin form (URL guard, name, schema).

    ``assistants`` (when given) replaces the assistants that may call it. The stored headers (often
    credentials) stay with the destination they were written for: when an update moves the URL to
    another scheme, host or port and ``headers_set`` is False (the change did not set headers again),
    they are removed.
    """
    if tool.pk is not None and not headers_set and tool.headers:
        stored_url = HttpTool.objects.filter(pk=tool.pk).values_list("url", flat=True).first()
        if stored_url is not None and not same_destination(stored_url, tool.url):
            tool.headers = {}
    tool.full_clean()
    tool.save()
    if assistants is not None:
        tool.assistants.set(assistants)
    return tool


@transaction.atomic
def do_delete_http_tool(tool: HttpTool) -> None:
    tool.delete()
