"""The server-side request forgery guard for URLs tenants configure."""

from __future__ import annotations

import pytest

from core.netguard import UnsafeURLError, check_address, check_url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8000/v1", "127.0.0.1"),
        ("http://localhost/v1", "does not call"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),  # the cloud's metadata service
        ("http://[::1]/v1", "::1"),
        ("http://0.0.0.0/v1", "0.0.0.0"),
        ("ftp://10.0.0.5/v1", "http:// or https://"),
        ("http://no-such-host.invalid/v1", "does not resolve"),
    ],
)
def test_refused(url: str, why: str) -> None:
    with pytest.raises(UnsafeURLError, match=why.replace(".", r"\.").replace("[", r"\[")):
        check_url(url)


def test_private_networks_are_allowed_unless_switched_off() -> None:
    check_url("http://10.0.3.7:8000/v1")  # a self-hosted vLLM
    with pytest.raises(UnsafeURLError, match="private address"):
        check_url("http://10.0.3.7:8000/v1", allow_private=False)


def test_loopback_only_when_allowed() -> None:
    check_url("http://127.0.0.1:11434/v1", allow_loopback=True)  # Ollama on a developer's machine


def test_the_assistant_form_refuses_a_metadata_address(settings) -> None:
    from django.core.exceptions import ValidationError

    from voice.models import Assistant

    settings.AURA_PROVIDER_URLS_ALLOW_LOOPBACK = False
    assistant = Assistant(name="x", openai_compatible_base_url="http://169.254.169.254/v1")
    with pytest.raises(ValidationError) as refused:
        assistant.clean()
    assert "openai_compatible_base_url" in refused.value.message_dict


@pytest.mark.parametrize("address", ["100.100.100.200", "fd00:ec2::254", "100.64.0.1"])
def test_shared_address_space_and_metadata_services_are_refused(address):
    with pytest.raises(UnsafeURLError):
        check_address(address, "host", allow_private=False)
    if address != "100.64.0.1":  # a metadata service is refused even where private networks are allowed
        with pytest.raises(UnsafeURLError):
            check_address(address, "host", allow_private=True)
