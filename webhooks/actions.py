"""Writes to webhooks. ``do_emit_event`` is the one entry point other apps call.

    from webhooks.actions import do_emit_event
    do_emit_event("lead.captured", {"lead": {...}})                 # inside the tenant's context
    do_emit_event("usage.threshold_reached", {...}, organization=org)  # anywhere else

It writes one delivery row per subscribed endpoint in the caller's transaction and queues the sends
when that transaction commits: an event of a rolled-back write is never sent.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from core.crypto import encrypt, mask
from core.netguard import UnsafeURLError, check_url, webhook_policy
from core.signing import SIGNATURE_HEADER, signature_header
from tenants.models import Organization
from webhooks import http
from webhooks.models import PING, DeliveryStatus, EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.queries import endpoint_secret, endpoints_for, subscribed_event_types

logger = logging.getLogger(__name__)

# Seconds to wait before attempts 2, 3, …: exponential back-off, the last attempt about 24 h after the first.
RETRY_DELAYS_S = (30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800)
MAX_ATTEMPTS = len(RETRY_DELAYS_S) + 1


def check_webhook_url(url: str) -> None:
    """The SSRF guard, as at delivery time (raises ValidationError for forms and the API)."""
    try:
        check_url(url, policy=webhook_policy)
    except UnsafeURLError as exc:
        raise ValidationError({"url": str(exc)}, code="unsafe_url") from None


def new_signing_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def seal_secret(endpoint: WebhookEndpoint, secret: str) -> None:
    endpoint.encrypted_secret = encrypt(secret)
    endpoint.secret_hint = mask(secret)


@dataclass(frozen=True, slots=True)
class NewEndpoint:
    endpoint: WebhookEndpoint
    secret: str


@transaction.atomic
def do_save_webhook_endpoint(endpoint: WebhookEndpoint) -> NewEndpoint | WebhookEndpoint:
    """Create (with a new signing secret, returned once here) or update an endpoint, URL checked."""
    endpoint.full_clean(exclude=["organization", "encrypted_secret", "secret_hint"])
    check_webhook_url(endpoint.url)
    if endpoint.pk is None:
        secret = new_signing_secret()
        seal_secret(endpoint, secret)
        endpoint.save()
        return NewEndpoint(endpoint, secret)
    endpoint.save()
    return endpoint


@transaction.atomic
def do_roll_webhook_secret(endpoint: WebhookEndpoint) -> str:
    """A new signing secret, in force for the next attempt of every delivery."""
    secret = new_signing_secret()
    seal_secret(endpoint, secret)
    endpoint.save(update_fields=["encrypted_secret", "secret_hint", "updated_at"])
    return secret


def do_delete_webhook_endpoint(endpoint: WebhookEndpoint) -> None:
    endpoint.delete()  # its deliveries and their attempts go with it


# ------------------------------------------------------------------ events
def _organization_of(organization: Organization | int | None) -> Organization:
    if organization is None:
        organization = getattr(connection, "tenant", None)
        if organization is None or getattr(organization, "schema_name", "public") == "public":
            raise RuntimeError("do_emit_event needs organization= outside a tenant's context")
    if isinstance(organization, int):
        organization = Organization.objects.get(pk=organization)
    return organization


def _body(event_id: str, event_type: str, organization: Organization, data: dict[str, object]) -> str:
    envelope = {
        "id": event_id,
        "type": event_type,
        "created": int(time.time()),
        "organization": {"id": organization.pk, "slug": organization.slug},
        "data": data,
    }
    return json.dumps(envelope, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)


def do_emit_event(
    event_type: str, payload: dict[str, object], *, organization: Organization | int | None = None
) -> list[WebhookDelivery]:
    """Send ``payload`` to every active endpoint of the organization subscribed to ``event_type``.

    ``organization``: the organization, its id, or None for the current tenant (connection.tenant).
    ``payload`` must be JSON-serializable (dates, decimals and UUIDs are fine); it becomes ``data``
    in the envelope ``{"id": "evt_…", "type", "created", "organization": {"id", "slug"}, "data"}``.
    Safe inside a transaction: sends are queued on commit. Costs one cached lookup when nobody listens.
    """
    if event_type not in EventType.values:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    organization_id = organization if isinstance(organization, int) else _organization_of(organization).pk
    if event_type not in subscribed_event_types(organization_id):
        return []
    endpoints = endpoints_for(organization_id, event_type)
    if not endpoints:
        return []
    organization = _organization_of(organization)
    event_id = "evt_" + uuid.uuid4().hex
    body = _body(event_id, event_type, organization, payload)
    return _create_deliveries(organization, endpoints, event_id, event_type, body)


def _create_deliveries(
    organization: Organization,
    endpoints: list[WebhookEndpoint],
    event_id: str,
    event_type: str,
    body: str,
    replay_of: WebhookDelivery | None = None,
) -> list[WebhookDelivery]:
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                organization=organization,
                endpoint=endpoint,
                event_id=event_id,
                event_type=event_type,
                body=body,
                next_attempt_at=now,
                replay_of=replay_of,
            )
            for endpoint in endpoints
        ]
    )
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: _enqueue_all(ids))
    return deliveries


# How a delivery is queued: webhooks.tasks hands its enqueue_delivery in (WebhooksConfig.ready), since
# the tasks run these actions and so sit above them.
_QUEUE: list[Callable[..., None]] = []


def deliveries_are_queued_by(enqueue: Callable[..., None]) -> None:
    """Register ``enqueue(delivery_id, *, attempt)``."""
    _QUEUE[:] = [enqueue]


def _enqueue_all(ids: list[uuid.UUID]) -> None:
    for delivery_id in ids:
        _QUEUE[0](delivery_id, attempt=1)


@transaction.atomic
def do_send_ping(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A ``ping`` event to this endpoint alone, whatever it subscribed to: "does my receiver work?"."""
    event_id = "evt_" + uuid.uuid4().hex
    data = {"message": "A test event from AURA. Your endpoint received it.", "endpoint_id": endpoint.pk}
    body = _body(event_id, PING, endpoint.organization, data)
    return _create_deliveries(endpoint.organization, [endpoint], event_id, PING, body)[0]


@transaction.atomic
def do_replay_delivery(delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery's event again, as a new delivery with the same event id and body (receivers
    that already processed it can tell by the id)."""
    return _create_deliveries(
        delivery.organization, [delivery.endpoint], delivery.event_id, delivery.event_type, delivery.body, delivery
    )[0]


# ------------------------------------------------------------------ delivery
@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    attempted: bool
    succeeded: bool = False
    retry_in_s: int | None = None  # set when another attempt is due
    status_code: int | None = None


def do_attempt_delivery(delivery_id: uuid.UUID | str, *, attempt: int, now: datetime | None = None) -> AttemptOutcome:
    """Make attempt number ``attempt`` of a delivery, log it, and schedule the next one if it failed.

    Idempotent: a message that arrives twice (a broker redelivery) finds the attempt claimed and does
    nothing. The attempt is claimed in one short transaction and recorded in another: the HTTP call in
    between holds no database lock or transaction. A worker that dies mid-call leaves the claim with
    its retry time set, so ``due_deliveries`` picks the next attempt up.
    """
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .select_related("endpoint", "organization")
            .filter(pk=delivery_id, status=DeliveryStatus.PENDING, attempt_count=attempt - 1)
            .first()
        )
        if delivery is None:
            return AttemptOutcome(attempted=False)
        delivery.attempt_count = attempt
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=_retry_delay(attempt))
        delivery.save(update_fields=["attempt_count", "next_attempt_at"])
    endpoint = delivery.endpoint
    started = now or timezone.now()
    if attempt > MAX_ATTEMPTS:  # claimed after a worker died during the last attempt
        result = http.PostResult(None, "", "no attempts left", 0)
    elif not endpoint.is_active:
        result = http.PostResult(None, "", "the endpoint is disabled", 0)
    else:
        body = delivery.body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "AURA-Webhooks/1.0",
            SIGNATURE_HEADER: signature_header(endpoint_secret(endpoint), body),
            "AURA-Event": delivery.event_type,
            "AURA-Event-Id": delivery.event_id,
            "AURA-Delivery": str(delivery.pk),
        }
        result = http.post(
            endpoint.url,
            body,
            headers,
            timeout_s=settings.AURA_WEBHOOK_TIMEOUT_S,
            policy=webhook_policy,  # the settings of now, whatever they were when the URL was saved
        )
    retry_in = None
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=attempt,
            started_at=started,
            duration_ms=result.duration_ms,
            status_code=result.status_code,
            succeeded=result.succeeded,
            error=result.error,
            response_body=result.response_body,
        )
        delivery.last_status_code = result.status_code
        if result.succeeded:
            delivery.status = DeliveryStatus.SUCCEEDED
            delivery.completed_at = timezone.now()
            delivery.next_attempt_at = None
        elif attempt >= MAX_ATTEMPTS or not endpoint.is_active:
            delivery.status = DeliveryStatus.FAILED
            delivery.completed_at = timezone.now()
            delivery.next_attempt_at = None
        else:
            retry_in = _retry_delay(attempt)
            delivery.next_attempt_at = timezone.now() + timedelta(seconds=retry_in)
        delivery.save(update_fields=["last_status_code", "status", "completed_at", "next_attempt_at"])
    logger.info(
        "webhook delivery=%s event=%s attempt=%s status=%s error=%s",
        delivery.pk,
        delivery.event_type,
        attempt,
        result.status_code,
        result.error,
    )
    return AttemptOutcome(True, result.succeeded, retry_in, result.status_code)


def _retry_delay(attempt: int) -> int:
    return RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S)) - 1]


def due_deliveries(*, now: datetime | None = None, overdue: timedelta = timedelta(minutes=2)) -> list[tuple[str, int]]:
    """(delivery id, next attempt number) of pending deliveries whose queued message seems lost."""
    cutoff = (now or timezone.now()) - overdue
    rows = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=cutoff)
    return [(str(pk), count + 1) for pk, count in rows.values_list("pk", "attempt_count")[:500]]
