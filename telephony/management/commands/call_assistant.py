"""manage.py call_assistant: phone an organization's assistant on this machine, without Twilio
(development only; docs/telephony.md, "Call your assistant locally")."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import tenant_context

from conversations.models import Turn
from telephony.local_call import (
    NotInDevelopmentError,
    call,
    caller_audio,
    do_connect_development_number,
    ring,
    write_wav,
)
from telephony.models import Call
from tenants.queries import organization_by_slug
from voice.queries import default_assistant_id

HOURS = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "speech" / "hours.wav"


class Command(BaseCommand):
    help = "Call an assistant through the real phone path (webhook, media stream) with a local Twilio stand-in."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", default="demo", help="The organization's slug (default: demo).")
        parser.add_argument("--say", type=Path, default=HOURS, help="A WAV file the caller says (any rate).")
        parser.add_argument("--out", type=Path, help="Write what the caller heard to this WAV file (8 kHz).")
        parser.add_argument("--max-seconds", type=float, default=60.0, help="Hang up after this long at most.")
        parser.add_argument(
            "--platform-url", default=settings.AURA_PLATFORM_URL, help="Where `make run` serves the platform."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        organization = organization_by_slug(options["organization"])
        if organization is None:
            raise CommandError(f"No organization {options['organization']!r}.")
        with tenant_context(organization):
            assistant_id = default_assistant_id()
        if assistant_id is None:
            raise CommandError("The organization has no default assistant.")
        try:
            number, auth_token = do_connect_development_number(organization, assistant_id=assistant_id)
        except NotInDevelopmentError as refused:
            raise CommandError(str(refused)) from refused
        speech = caller_audio(options["say"])
        platform_url = options["platform_url"].rstrip("/")
        self.stdout.write(f"Calling {number.number} ({organization.name}) at {platform_url} …")
        try:
            stream_url, parameters, call_sid = ring(platform_url, number, auth_token)
        except (OSError, RuntimeError) as failed:
            raise CommandError(f"The call did not connect: {failed}. Is `make run` running?") from failed
        record = asyncio.run(call(stream_url, parameters, call_sid, speech, max_s=options["max_seconds"]))
        if options["out"]:
            write_wav(options["out"], bytes(record.heard))
            self.stdout.write(f"What you heard: {options['out']}")
        self.stdout.write(f"Heard {len(record.heard) / 8000:.1f} s of the assistant's voice.")
        conversation_id = Call.objects.filter(call_sid=call_sid).values_list("conversation_id", flat=True).first()
        if conversation_id is None:
            raise CommandError("The stream never started a conversation (see the server's log).")
        with tenant_context(organization):
            turns = list(Turn.objects.filter(conversation_id=conversation_id).order_by("index"))
        for turn in turns:
            self.stdout.write(f"  {turn.role}: {turn.text}")
        self.stdout.write(f"Conversation {conversation_id}: it is in the admin under Conversations (channel phone).")
