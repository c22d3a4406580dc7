"""ORM calls from async code land in the tenant's schema only through run_in_tenant."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.db.utils import ProgrammingError

from tenants.models import Organization
from tenants.tenancy import run_in_public, run_in_tenant
from voice.models import Assistant


def _assistant_names_and_schema() -> tuple[list[str], str]:
    return list(Assistant.objects.values_list("name", flat=True)), connection.schema_name


class AssistantListConsumer(AsyncJsonWebsocketConsumer):
    """A consumer shaped like the voice session: it knows its tenant and reads through the helper."""

    async def connect(self) -> None:
        slug = self.scope["url_route"]["kwargs"]["slug"] if "url_route" in self.scope else self.scope["path"].strip("/")
        tenant = await run_in_public(Organization.objects.get, slug=slug)
        await self.accept()
        names, schema = await run_in_tenant(tenant, _assistant_names_and_schema)
        await self.send_json({"names": names, "schema": schema})


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("alpha", "beta")
async def test_queries_from_a_consumer_hit_each_tenants_schema():
    for slug, expected in (("alpha", "Alpha assistant"), ("beta", "Beta assistant")):
        communicator = WebsocketCommunicator(AssistantListConsumer.as_asgi(), f"/{slug}/")
        connected, _ = await communicator.connect()
        assert connected
        message = await communicator.receive_json_from(timeout=5)
        assert message == {"names": [expected], "schema": f"t_{slug}"}
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_without_the_helper_the_query_falls_back_to_the_public_schema(alpha):
    """The failure the helper exists for: the worker thread's connection is on the public schema."""
    with pytest.raises(ProgrammingError, match="voice_assistant"):
        await database_sync_to_async(_assistant_names_and_schema)()


@pytest.mark.django_db(transaction=True)
async def test_the_helper_leaves_the_thread_on_its_previous_schema(alpha):
    await run_in_tenant(alpha.organization, _assistant_names_and_schema)

    schema = await database_sync_to_async(lambda: connection.schema_name)()
    assert schema == "public"
