"""Writes to billing: usage with each turn, subscriptions, roll-ups, invoices, alerts, the price list.

Every job here is idempotent: it recomputes what it owns from the usage events (never adds to a
running total), in transactions that either finish or leave nothing, under an advisory lock so
two runs do not interleave. Run it twice, or again after a crash, and the result is the same.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.catalog import PRICES_EFFECTIVE_FROM, SEED_PLANS, SEED_PRICES
from billing.models import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Metric,
    Plan,
    PlanChangeRequest,
    PlanChangeStatus,
    PlanPeriod,
    ProviderPrice,
    RollupState,
    Subscription,
    SubscriptionStatus,
    UsageAlert,
    UsageEvent,
)
from billing.periods import Period, midnight, months_between
from billing.pricing import UsageTotals, compute_charges
from billing.queries import (
    ROLLUP_STATE,
    Billable,
    billables,
    earliest_event_at,
    grace_period,
    prices_at,
    rolled_up_costs,
    rolled_up_totals,
    used_percent,
)
from core.inserts import insert_rows
from tenants.models import Organization


class BilledConversation(Protocol):
    """What billing reads of a conversation (``conversations.models.Conversation``, an app above this one)."""

    id: uuid.UUID
    channel: str
    assistant_id: int
    started_at: datetime


class BilledTurn(Protocol):
    """What billing reads of a stored turn (``conversations.models.Turn``)."""

    index: int
    role: str
    input_mode: str
    audio_ms: float | None
    route: dict[str, object]
    provider: str
    model: str
    tts_characters: int
    input_tokens: int
    output_tokens: int
    started_at: datetime
    ended_at: datetime | None


logger = logging.getLogger(__name__)

# Advisory lock keys (first half): one per job, so two runs of a job queue instead of interleaving.
_LOCK_ROLLUP, _LOCK_INVOICE, _LOCK_ALERT = 7301, 7302, 7303
ROLLUP_CHUNK_DAYS = 31
ROLLUP_SETTLE = timedelta(minutes=10)  # events of a day are complete this long after midnight


def _advisory_lock(kind: int, key: int = 0) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [kind, key])


# ================================================================== usage events
@dataclass(frozen=True, slots=True)
class _Event:
    metric: str
    quantity: Decimal
    provider: str = ""
    model: str = ""
    key_suffix: str = ""  # tells apart two events of one metric in one turn (tool rounds on other models)


def _current_organization_id() -> int:
    tenant = getattr(connection, "tenant", None)
    if tenant is None or getattr(tenant, "schema_name", "public") == "public":
        raise RuntimeError("usage is recorded inside the tenant's schema (tenant_context / run_in_tenant)")
    return tenant.pk


def do_record_session_usage(*, conversation: BilledConversation) -> None:
    """One ``session`` event per conversation; its key is the conversation, so a resume adds nothing."""
    _insert(
        organization_id=_current_organization_id(),
        conversation=conversation,
        occurred_at=conversation.started_at,
        key_prefix=f"session:{conversation.id}",
        events=[_Event(Metric.SESSION, Decimal(1))],
        single=True,
    )


def do_record_turn_usage(*, conversation: BilledConversation, turn: BilledTurn) -> None:
    """The turn's usage events, in the caller's transaction (the turn's own): both are stored, or neither."""
    _insert(
        organization_id=_current_organization_id(),
        conversation=conversation,
        occurred_at=turn.ended_at or turn.started_at,
        key_prefix=f"turn:{conversation.id}:{turn.index}",
        events=turn_events(turn),
    )


def do_record_model_usage(
    *, conversation: BilledConversation, key: str, provider: str, model: str, input_tokens: int, output_tokens: int
) -> None:
    """Tokens of a model call that is not a reply (a conversation's summary, a visitor's profile).
    ``key`` names the call, so recording it again counts once."""
    _insert(
        organization_id=_current_organization_id(),
        conversation=conversation,
        occurred_at=timezone.now(),
        key_prefix=f"model:{key}",
        events=[
            _Event(metric, Decimal(quantity), provider, model)
            for metric, quantity in ((Metric.LLM_INPUT_TOKENS, input_tokens), (Metric.LLM_OUTPUT_TOKENS, output_tokens))
            if quantity
        ],
    )


def turn_events(turn: BilledTurn) -> list[_Event]:
    """What a stored turn used. Units: seconds, tokens, characters. Zero quantities are left out.

    A visitor's spoken turn: its speech in seconds, and the seconds of audio sent to speech-to-text
    (``route.stt_audio_ms``: every request's audio, as providers bill it, not the time they took; the
    speech seconds for turns stored without it). An assistant's turn: tokens of the chat model that
    answered, characters and audio seconds of the voice that spoke it.
    """
    seconds = Decimal(str(round(turn.audio_ms or 0.0))) / 1000
    events: list[_Event] = []
    if turn.role == "visitor":
        if turn.input_mode == "voice" and seconds > 0:
            # Speech-to-text: the audio sent by every request for the turn (semantic end of turn sends the
            # utterance so far at each pause; dropped requests are billed by the provider too).
            sent_ms = turn.route.get("stt_audio_ms") if isinstance(turn.route, dict) else None
            stt_seconds = Decimal(int(sent_ms)) / 1000 if isinstance(sent_ms, int | float) and sent_ms > 0 else seconds
            events += [
                _Event(Metric.AUDIO_IN_SECONDS, seconds, turn.provider, turn.model),
                _Event(Metric.STT_SECONDS, stt_seconds, turn.provider, turn.model),
            ]
        return events
    tts_provider, tts_model = _chosen(turn.route, "tts")
    events += _llm_events(turn)
    for metric, quantity, provider, model in (
        (Metric.TTS_CHARACTERS, turn.tts_characters, tts_provider, tts_model),
        (Metric.AUDIO_OUT_SECONDS, seconds, tts_provider, tts_model),
    ):
        if quantity:
            events.append(_Event(metric, Decimal(quantity), provider, model))
    return events


def _llm_events(turn: BilledTurn) -> list[_Event]:
    """Tokens per model: a reply whose tool rounds were answered by several models bills each its own."""
    totals: dict[tuple[str, str], list[int]] = {}
    rounds = turn.route.get("llm_rounds") if isinstance(turn.route, dict) else None
    if isinstance(rounds, list) and rounds:
        for round_ in rounds:
            pair = totals.setdefault((str(round_.get("provider", "")), str(round_.get("model", ""))), [0, 0])
            pair[0] += int(round_.get("input_tokens") or 0)
            pair[1] += int(round_.get("output_tokens") or 0)
    else:
        totals[(turn.provider, turn.model)] = [turn.input_tokens, turn.output_tokens]
    events = []
    for (provider, model), (input_tokens, output_tokens) in totals.items():
        # The answering model keeps the plain key; another round's model gets its own.
        suffix = "" if (provider, model) == (turn.provider, turn.model) else f":{provider}:{model}"
        for metric, quantity in ((Metric.LLM_INPUT_TOKENS, input_tokens), (Metric.LLM_OUTPUT_TOKENS, output_tokens)):
            if quantity:
                events.append(_Event(metric, Decimal(quantity), provider, model, suffix))
    return events


def _chosen(route: object, capability: str) -> tuple[str, str]:
    chosen = route.get(capability, {}).get("chosen") if isinstance(route, dict) else None
    if not isinstance(chosen, str) or ":" not in chosen:
        return "", ""
    provider, model = chosen.split(":", 1)
    return provider, model


# What providers bill us for. Audio seconds, sessions and tool calls measure the product's use, not a
# provider's bill: they cost nothing by themselves.
PRICED_METRICS = frozenset(
    {
        Metric.STT_SECONDS,
        Metric.LLM_INPUT_TOKENS,
        Metric.LLM_OUTPUT_TOKENS,
        Metric.TTS_CHARACTERS,
        Metric.PHONE_INBOUND_SECONDS,
        Metric.PHONE_OUTBOUND_SECONDS,
    }
)
PHONE_CARRIER = "twilio"


def do_record_call_usage(
    *,
    organization_id: int,
    call_sid: str,
    outbound: bool,
    seconds: int,
    occurred_at: datetime,
    assistant_id: int | None = None,
    conversation_id: uuid.UUID | str | None = None,
) -> None:
    """A phone call's minutes with the carrier (public schema: the call is a public row), priced per
    direction (``twilio``/``inbound`` and ``twilio``/``outbound`` in the price list). One event per
    call: a later, more exact duration from Twilio replaces the first. The quantity is the call's seconds;
    its cost is of whole minutes, each call rounded up, as the carrier bills it."""
    if seconds <= 0:
        return
    metric = Metric.PHONE_OUTBOUND_SECONDS if outbound else Metric.PHONE_INBOUND_SECONDS
    event = _Event(metric, Decimal(seconds), PHONE_CARRIER, "outbound" if outbound else "inbound")
    price = prices_at({(event.provider, event.model, metric)}, occurred_at).get((event.provider, event.model, metric))
    billed_seconds = Decimal(-(-seconds // 60) * 60)  # the carrier's whole minutes
    cost = price.cost(billed_seconds) if price else _unpriced_cost(event)
    UsageEvent.objects.update_or_create(
        idempotency_key=f"call:{call_sid}:{metric}",
        defaults={
            "organization_id": organization_id,
            "metric": metric,
            "quantity": event.quantity,
            "channel": "phone",
            "provider": event.provider,
            "model": event.model,
            "assistant_id": assistant_id,
            "conversation_id": conversation_id,
            "occurred_at": occurred_at,
            "cost": cost,
        },
    )


def _unpriced_cost(event: _Event) -> Decimal | None:
    """No price found: free when nothing bills it; unknown (null, flagged on the dashboard) otherwise."""
    return None if event.metric in PRICED_METRICS and event.provider else Decimal(0)


def _insert(
    *,
    organization_id: int,
    conversation: BilledConversation,
    occurred_at: datetime,
    key_prefix: str,
    events: list[_Event],
    single: bool = False,
) -> None:
    if not events:
        return
    prices = prices_at({(e.provider, e.model, e.metric) for e in events if e.provider}, occurred_at)
    rows = []
    for event in events:
        price = prices.get((event.provider, event.model, event.metric))
        rows.append(
            UsageEvent(
                organization_id=organization_id,
                metric=event.metric,
                quantity=event.quantity,
                channel=conversation.channel,
                provider=event.provider,
                model=event.model,
                assistant_id=conversation.assistant_id,
                conversation_id=conversation.id,
                occurred_at=occurred_at,
                cost=price.cost(event.quantity) if price else _unpriced_cost(event),
                idempotency_key=key_prefix if single else f"{key_prefix}:{event.metric}{event.key_suffix}",
            )
        )
    # INSERT … ON CONFLICT DO NOTHING: the same turn recorded again counts once. Built once
    # (core.inserts): every live turn records its usage here.
    insert_rows(rows, ignore_conflicts=True)


# ================================================================== subscriptions and plans
def do_subscribe(organization: Organization, *, plan: Plan | None = None, at: datetime | None = None) -> Subscription:
    """Start the organization's subscription (the default plan's trial unless a plan is given). Idempotent."""
    at = at or timezone.now()
    existing = Subscription.objects.filter(organization=organization).first()
    if existing is not None:
        return existing
    if plan is None:
        plan = Plan.objects.filter(slug=settings.AURA_BILLING_DEFAULT_PLAN).first()
        if plan is None:
            raise ValidationError(
                f"The default plan “{settings.AURA_BILLING_DEFAULT_PLAN}” does not exist: "
                "run `manage.py setup_platform` or set AURA_BILLING_DEFAULT_PLAN."
            )
        trial_ends_at = at + timedelta(days=settings.AURA_BILLING_TRIAL_DAYS)
        status = SubscriptionStatus.TRIAL
    else:
        trial_ends_at, status = None, SubscriptionStatus.ACTIVE
    with transaction.atomic():
        subscription = Subscription.objects.create(
            organization=organization, plan=plan, status=status, started_at=at, trial_ends_at=trial_ends_at
        )
        PlanPeriod.objects.create(subscription=subscription, plan=plan, starts_at=at)
    return subscription


@transaction.atomic
def do_change_plan(subscription: Subscription, plan: Plan, *, at: datetime | None = None) -> Subscription:
    """Switch plans at ``at`` (now by default): the current plan period ends there, the new one begins.

    Invoices prorate by these periods (billing.pricing; the preview is ``billing.queries.plan_change_preview``).
    A change to a paid plan ends a running trial at ``at``: the subscription is then active and pays from
    that moment, never "active" with a trial end still ahead. A change to a free plan leaves a trial as it is.
    A change back-dated into a finalized month, or of a cancelled subscription, is refused.
    Used by staff (platform admin) and by a tenant's self-service request alike.
    """
    at = at or timezone.now()
    subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
    if subscription.plan_id == plan.pk:
        return subscription
    if subscription.status == SubscriptionStatus.CANCELLED:
        raise ValidationError("The subscription is cancelled: re-activate it before changing its plan.")
    _refuse_change_in_finalized_month(subscription.organization_id, at)
    current = subscription.periods.filter(ends_at__isnull=True).order_by("-starts_at").first()
    if current is not None and at <= current.starts_at:
        raise ValidationError("A plan change must come after the current plan's start.")
    if current is not None:
        current.ends_at = at
        current.save(update_fields=["ends_at"])
    PlanPeriod.objects.create(subscription=subscription, plan=plan, starts_at=at)
    subscription.plan = plan
    fields = ["plan", "updated_at"]
    in_trial = subscription.status == SubscriptionStatus.TRIAL or (
        subscription.trial_ends_at is not None and subscription.trial_ends_at > at
    )
    if in_trial and plan.monthly_fee > 0:
        subscription.trial_ends_at = at  # the paid plan's fee starts now
        fields.append("trial_ends_at")
        if subscription.status == SubscriptionStatus.TRIAL:
            subscription.status = SubscriptionStatus.ACTIVE
            fields.append("status")
    subscription.save(update_fields=fields)
    PlanChangeRequest.objects.filter(
        organization_id=subscription.organization_id, status=PlanChangeStatus.PENDING, plan=plan
    ).update(status=PlanChangeStatus.APPLIED, decided_at=at)
    return subscription


@transaction.atomic
def do_request_plan_change(organization: Organization, plan: Plan, *, requested_by: str) -> PlanChangeRequest:
    """A tenant's admins ask for ``plan``. A self-service plan is applied at once (``do_change_plan``);
    another waits for staff. A newer request replaces a pending one."""
    if not plan.is_active:
        raise ValidationError("That plan is not offered.")
    subscription = Subscription.objects.select_for_update().filter(organization=organization).first()
    if subscription is None:
        raise ValidationError("Your organization has no subscription yet: platform staff set its first plan.")
    if subscription.plan_id == plan.pk:
        raise ValidationError(f"You are already on {plan.name}.")
    now = timezone.now()
    PlanChangeRequest.objects.filter(organization=organization, status=PlanChangeStatus.PENDING).update(
        status=PlanChangeStatus.WITHDRAWN, decided_at=now
    )
    request = PlanChangeRequest.objects.create(
        organization=organization, plan=plan, requested_by=requested_by[:200], requested_at=now
    )
    if plan.self_service:
        do_change_plan(subscription, plan, at=now)
        request.status, request.decided_by, request.decided_at = PlanChangeStatus.APPLIED, "self-service", now
        request.save(update_fields=["status", "decided_by", "decided_at"])
    return request


@transaction.atomic
def do_decide_plan_change(request: PlanChangeRequest, *, approve: bool, decided_by: str) -> PlanChangeRequest:
    """Staff approve (the plan changes now) or decline a pending request."""
    request = PlanChangeRequest.objects.select_for_update().get(pk=request.pk)
    if request.status != PlanChangeStatus.PENDING:
        raise ValidationError(f"This request is already {request.get_status_display().lower()}.")
    now = timezone.now()
    if approve:
        subscription = Subscription.objects.get(organization_id=request.organization_id)
        do_change_plan(subscription, request.plan, at=now)
    request.status = PlanChangeStatus.APPLIED if approve else PlanChangeStatus.DECLINED
    request.decided_by, request.decided_at = decided_by[:200], now
    request.save(update_fields=["status", "decided_by", "decided_at"])
    return request


@transaction.atomic
def do_set_subscription_status(subscription: Subscription, status: str, *, at: datetime | None = None) -> Subscription:
    """Trial, active, past due (still served) or cancelled (no new sessions, no fee from ``at`` on)."""
    if status not in SubscriptionStatus.values:
        raise ValidationError(f"Unknown subscription status “{status}”.")
    at = at or timezone.now()
    subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
    if status == SubscriptionStatus.CANCELLED and subscription.status != SubscriptionStatus.CANCELLED:
        _refuse_change_in_finalized_month(subscription.organization_id, at)
        subscription.cancelled_at = at
        subscription.periods.filter(ends_at__isnull=True).update(ends_at=at)  # no plan, no fee, from now on
    elif status != SubscriptionStatus.CANCELLED and subscription.status == SubscriptionStatus.CANCELLED:
        subscription.cancelled_at = None  # re-activated: the current plan again, from now on
        PlanPeriod.objects.create(subscription=subscription, plan=subscription.plan, starts_at=at)
    if status == SubscriptionStatus.ACTIVE and subscription.trial_ends_at and subscription.trial_ends_at > at:
        subscription.trial_ends_at = at  # the trial ends now: the fee starts
    subscription.status = status
    subscription.save(update_fields=["status", "cancelled_at", "trial_ends_at", "updated_at"])
    return subscription


def do_end_expired_trials(*, now: datetime | None = None) -> int:
    """Trials whose end has passed become active subscriptions."""
    now = now or timezone.now()
    return Subscription.objects.filter(status=SubscriptionStatus.TRIAL, trial_ends_at__lte=now).update(
        status=SubscriptionStatus.ACTIVE, updated_at=now
    )


def _refuse_change_in_finalized_month(organization_id: int, at: datetime) -> None:
    period = Period.month_of(at)
    finalized = Invoice.objects.filter(organization_id=organization_id, period_start=period.start).exclude(
        status=InvoiceStatus.DRAFT
    )
    if finalized.exists():
        raise ValidationError(f"The invoice for {period.label()} is already finalized; change the plan from now on.")


# ================================================================== the price list
def do_seed_catalog() -> dict[str, int]:
    """Add the published list prices and the default plans that are missing. Never overwrites an edit.

    Organizations that existed before billing keep no subscription (no limits, no invoice) until
    staff subscribe them: putting paying customers on a capped trial at a deploy would cut them off.
    """
    created = {"prices": 0, "plans": 0}
    with transaction.atomic():
        for seed in SEED_PRICES:
            _, made = ProviderPrice.objects.get_or_create(
                provider=seed.provider,
                model=seed.model,
                metric=seed.metric,
                effective_from=PRICES_EFFECTIVE_FROM,
                defaults={"price": seed.price, "per_quantity": seed.per_quantity, "note": seed.note},
            )
            created["prices"] += made
        for seed in SEED_PLANS:
            _, made = Plan.objects.get_or_create(
                slug=seed.slug,
                defaults={
                    "name": seed.name,
                    "monthly_fee": seed.monthly_fee,
                    "included_minutes": seed.included_minutes,
                    "overage_per_minute": seed.overage_per_minute,
                    "included_text_tokens": seed.included_text_tokens,
                    "overage_per_1k_tokens": seed.overage_per_1k_tokens,
                    "max_concurrent_sessions": seed.max_concurrent_sessions,
                    "cap": seed.cap,
                    "phone_inbound_per_minute": seed.phone_inbound_per_minute,
                    "phone_outbound_per_minute": seed.phone_outbound_per_minute,
                    "self_service": seed.self_service,
                },
            )
            created["plans"] += made
    return created


@transaction.atomic
def do_reprice_usage(*, provider: str, model: str, metric: str, since: datetime) -> int:
    """Recompute the cost of recorded events after a price was added or changed, then their roll-ups.

    Set-based: one UPDATE picks, per event, the price in force at its ``occurred_at`` (the model's
    own, else the provider's "*"). Returns how many events were repriced.
    """
    events = ["e.metric = %s", "e.occurred_at >= %s", "e.provider = %s"]
    params: list[object] = [metric, since, provider]
    if model != "*":
        events.append("e.model = %s")
        params.append(model)
    sql = f"""
        UPDATE billing_usageevent e SET cost = (
            SELECT round(e.quantity * p.price / p.per_quantity, 8) FROM billing_providerprice p
            WHERE p.provider = e.provider AND p.metric = e.metric AND p.effective_from <= e.occurred_at
              AND (p.model = e.model OR p.model = '*')
            ORDER BY (p.model = e.model) DESC, p.effective_from DESC LIMIT 1)
        WHERE {" AND ".join(events)}
        RETURNING (e.occurred_at AT TIME ZONE 'UTC')::date
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        days = [row[0] for row in cursor.fetchall()]
    if days:
        do_rollup_usage(min(days), max(days) + timedelta(days=1))
    return len(days)


# ================================================================== roll-ups
@dataclass(frozen=True, slots=True)
class RollupResult:
    start: date
    end: date
    daily_rows: int
    monthly_rows: int


def do_rollup_usage(start: date, end: date) -> RollupResult:
    """Recompute DailyUsage for the days [start, end) and MonthlyUsage for the months they touch.

    Set-based SQL: each chunk of days is one transaction that deletes the chunk's rows and inserts
    them again from the events (INSERT … SELECT … GROUP BY). A crash leaves each chunk either done
    or as it was; a second run writes the same numbers.
    """
    if end <= start:
        raise ValueError(f"the roll-up period is empty: {start} … {end}")
    daily = 0
    chunk = start
    while chunk < end:
        chunk_end = min(end, chunk + timedelta(days=ROLLUP_CHUNK_DAYS))
        with transaction.atomic():
            _advisory_lock(_LOCK_ROLLUP)
            daily += _rollup_days(chunk, chunk_end)
        chunk = chunk_end
    monthly = 0
    for period in months_between(start, end):
        with transaction.atomic():
            _advisory_lock(_LOCK_ROLLUP)
            monthly += _rollup_month(period)
    return RollupResult(start, end, daily, monthly)


def _rollup_days(start: date, end: date) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '64MB'")  # a month of events groups in memory, not on disk
        cursor.execute("DELETE FROM billing_dailyusage WHERE day >= %s AND day < %s", [start, end])
        cursor.execute(
            """
            INSERT INTO billing_dailyusage
                (organization_id, day, metric, channel, quantity, cost, events, unpriced_events)
            SELECT organization_id, (occurred_at AT TIME ZONE 'UTC')::date, metric, channel,
                   sum(quantity), coalesce(sum(cost), 0), count(*), count(*) - count(cost)
            FROM billing_usageevent
            WHERE occurred_at >= %s AND occurred_at < %s
            GROUP BY 1, 2, 3, 4
            """,
            [midnight(start), midnight(end)],
        )
        return cursor.rowcount


def _rollup_month(period: Period) -> int:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM billing_monthlyusage WHERE month = %s", [period.start])
        cursor.execute(
            """
            INSERT INTO billing_monthlyusage
                (organization_id, month, metric, channel, quantity, cost, events, unpriced_events)
            SELECT organization_id, %s, metric, channel, sum(quantity), sum(cost), sum(events), sum(unpriced_events)
            FROM billing_dailyusage
            WHERE day >= %s AND day < %s
            GROUP BY organization_id, metric, channel
            """,
            [period.start, period.start, period.end],
        )
        return cursor.rowcount


def do_rollup_recent_usage(*, now: datetime | None = None) -> RollupResult | None:
    """The scheduled roll-up: from the first day not known complete (yesterday at the latest) to today.

    A beat that was down for days catches up on its next run. Afterwards every day that ended
    more than ROLLUP_SETTLE ago is complete, which the live quota relies on (billing.queries).
    """
    now = now or timezone.now()
    state = RollupState.objects.filter(name=ROLLUP_STATE).first()
    yesterday = (now - timedelta(days=1)).date()
    if state is not None:
        start = min(state.complete_before, yesterday)
    else:
        first = earliest_event_at()
        start = yesterday if first is None else min(first.date(), yesterday)
    result = do_rollup_usage(start, now.date() + timedelta(days=1))
    complete_before = (now - ROLLUP_SETTLE).date()
    RollupState.objects.update_or_create(
        name=ROLLUP_STATE, defaults={"complete_before": complete_before, "last_run_at": now}
    )
    return result


# ================================================================== invoices
@dataclass(frozen=True, slots=True)
class InvoiceRun:
    period: Period
    drafted: int
    finalized: int
    unchanged: int


def do_draft_invoices(period: Period, *, now: datetime | None = None) -> InvoiceRun:
    """Draft (or redraft) each subscribed organization's invoice for a month that has ended, and
    finalize it once the grace period for late events is over. Finalized invoices never change.

    The month is rolled up first, so late events that arrived inside the grace period count.
    One transaction per organization: a crash leaves finished invoices finished, and a re-run
    completes the rest with the same numbers.
    """
    now = now or timezone.now()
    if now < period.ends_at:
        raise ValueError(f"{period.label()} has not ended yet; its invoice is drafted once it has")
    do_rollup_usage(period.start, period.end)
    finalize = now >= period.ends_at + grace_period()
    usage = rolled_up_totals(period)
    costs = rolled_up_costs(period)
    drafted = finalized = unchanged = 0
    for billable in billables(period):
        with transaction.atomic():
            _advisory_lock(_LOCK_INVOICE, billable.organization_id)
            outcome = _write_invoice(billable, period, usage, costs, finalize=finalize, now=now)
        drafted += outcome == "drafted"
        finalized += outcome == "finalized"
        unchanged += outcome == "unchanged"
    return InvoiceRun(period, drafted, finalized, unchanged)


def _write_invoice(
    billable: Billable,
    period: Period,
    usage: dict[int, UsageTotals],
    costs: dict[int, Decimal],
    *,
    finalize: bool,
    now: datetime,
) -> str:
    organization_id = billable.organization_id
    invoice = Invoice.objects.select_for_update().filter(organization_id=organization_id, period_start=period.start)
    invoice = invoice.first()
    if invoice is not None and invoice.status != InvoiceStatus.DRAFT:
        return "unchanged"
    charges = compute_charges(
        billable.segments,
        usage.get(organization_id, UsageTotals()),
        start=period.starts_at,
        end=period.ends_at,
        tax_rate=settings.AURA_BILLING_TAX_RATE,
    )
    fields = {
        "period_end": period.end,
        "currency": settings.AURA_BILLING_CURRENCY,
        "plan_name": billable.plan_names,
        "subtotal": charges.subtotal,
        "tax_rate": charges.tax_rate,
        "tax": charges.tax,
        "total": charges.total,
        "provider_cost": costs.get(organization_id) or Decimal(0),
        "computed_at": now,
    }
    if invoice is None:
        invoice = Invoice.objects.create(
            organization_id=organization_id,
            period_start=period.start,
            number=f"AURA-{period.start:%Y%m}-{organization_id:05d}",
            **fields,
        )
    else:
        for name, value in fields.items():
            setattr(invoice, name, value)
        invoice.save()
        invoice.lines.all().delete()
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            position=position,
            kind=line.kind,
            description=line.description,
            quantity=line.quantity,
            unit=line.unit,
            unit_price=line.unit_price,
            amount=line.amount,
        )
        for position, line in enumerate(charges.lines, start=1)
    )
    if finalize:
        invoice.status = InvoiceStatus.OPEN
        invoice.finalized_at = now
        invoice.save(update_fields=["status", "finalized_at"])
        return "finalized"
    return "drafted"


def do_draft_due_invoices(*, now: datetime | None = None) -> InvoiceRun:
    """The scheduled job: last month's invoices, drafted until its grace period ends, then finalized."""
    now = now or timezone.now()
    return do_draft_invoices(Period.month_of(now).previous(), now=now)


@transaction.atomic
def do_set_invoice_status(invoice: Invoice, status: str, *, now: datetime | None = None) -> Invoice:
    """Staff: a finalized invoice is paid or void. Drafts cannot be paid; paid or void is final."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    allowed = {InvoiceStatus.OPEN: {InvoiceStatus.PAID, InvoiceStatus.VOID}}
    if status not in allowed.get(invoice.status, set()):
        raise ValidationError(f"A {invoice.get_status_display().lower()} invoice cannot become “{status}”.")
    invoice.status = status
    invoice.paid_at = (now or timezone.now()) if status == InvoiceStatus.PAID else None
    invoice.save(update_fields=["status", "paid_at"])
    return invoice


# ================================================================== alerts
@dataclass(frozen=True, slots=True)
class AlertRun:
    created: int
    sent: int


def do_send_usage_alerts(period: Period, *, now: datetime | None = None) -> AlertRun:
    """Alert each organization's admins once per threshold (AURA_BILLING_ALERT_THRESHOLDS) and month.

    Reads the monthly roll-up (the hourly roll-up runs first). An alert row is written before its
    e-mail and marked sent after it: a crash in between sends that one e-mail again on the next
    run, never skips it, and never sends a threshold twice otherwise.
    """
    now = now or timezone.now()
    usage = rolled_up_totals(period)
    created = 0
    for billable in billables(period):
        segments = list(billable.segments)
        percent = used_percent(usage.get(billable.organization_id) or UsageTotals(), segments, period)
        if percent is None:
            continue
        for threshold in sorted(settings.AURA_BILLING_ALERT_THRESHOLDS):
            if percent >= threshold:
                _, made = UsageAlert.objects.get_or_create(
                    organization_id=billable.organization_id,
                    period_start=period.start,
                    threshold=threshold,
                    defaults={"used_percent": percent},
                )
                created += made
                if made:
                    _emit_threshold_reached(billable.organization_id, period, threshold, percent)
    sent = 0
    pending = UsageAlert.objects.filter(sent_at__isnull=True, period_start=period.start).select_related("organization")
    for alert in pending:
        with transaction.atomic():
            _advisory_lock(_LOCK_ALERT, alert.pk)
            alert = UsageAlert.objects.select_for_update().select_related("organization").get(pk=alert.pk)
            if alert.sent_at is not None:
                continue
            recipients = _tenant_admin_emails(alert.organization)
            if recipients:
                send_mail(
                    _alert_subject(alert, period),
                    _alert_body(alert, period),
                    settings.DEFAULT_FROM_EMAIL,
                    recipients,
                )
            alert.sent_at = now
            alert.recipients = ", ".join(recipients)
            alert.save(update_fields=["sent_at", "recipients"])
            sent += 1
    return AlertRun(created, sent)


@dataclass(frozen=True, slots=True)
class ThresholdReached:
    organization_id: int
    period: Period
    threshold: int
    percent: Decimal


# Who hears that an organization's usage crossed an alert threshold. The composition root connects
# webhooks' ``usage.threshold_reached`` event here (aura/apps.py): billing and webhooks import neither other.
_THRESHOLD_LISTENERS: list[Callable[[ThresholdReached], None]] = []


def on_usage_threshold_reached(listener: Callable[[ThresholdReached], None]) -> None:
    """Register ``listener(reached)``: called once per threshold and month, with the alert row (idempotent)."""
    if listener not in _THRESHOLD_LISTENERS:
        _THRESHOLD_LISTENERS.append(listener)


def _emit_threshold_reached(organization_id: int, period: Period, threshold: int, percent: Decimal) -> None:
    reached = ThresholdReached(organization_id, period, threshold, percent)
    for listener in _THRESHOLD_LISTENERS:
        listener(reached)


def _tenant_admin_emails(organization: Organization) -> list[str]:
    with tenant_context(organization):
        return sorted(
            get_user_model()
            .objects.filter(is_active=True, is_superuser=True)
            .exclude(email="")
            .values_list("email", flat=True)
        )


def _alert_subject(alert: UsageAlert, period: Period) -> str:
    if alert.threshold >= 100:
        return f"AURA: {alert.organization.name} has used its plan's allowance for {period.label()}"
    return f"AURA: {alert.organization.name} has used {alert.threshold}% of its plan for {period.label()}"


def _alert_body(alert: UsageAlert, period: Period) -> str:
    subscription = Subscription.objects.select_related("plan").filter(organization=alert.organization).first()
    plan = subscription.plan if subscription else None
    lines = [
        f"Your organization {alert.organization.name} has used {alert.used_percent}% of the voice minutes "
        f"or text tokens included in its plan for {period.label()}.",
    ]
    if plan is not None and plan.cap == "hard":
        lines.append("Your plan has a hard cap: at 100% new conversations are refused until next month.")
    elif plan is not None:
        lines.append(
            f"Usage beyond the plan is charged at {plan.overage_per_minute} {settings.AURA_BILLING_CURRENCY} "
            "a minute; conversations go on."
        )
    lines.append("Your admin's Usage and billing page shows the details.")
    return "\n\n".join(lines)


def do_send_current_alerts(*, now: datetime | None = None) -> AlertRun:
    now = now or timezone.now()
    do_end_expired_trials(now=now)
    return do_send_usage_alerts(Period.month_of(now), now=now)
