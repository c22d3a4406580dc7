"""Hooks of one app connected to what another does, where neither may import the other (siblings of one
layer). An app above the one with the hook registers itself instead (telephony in its own AppConfig)."""

from __future__ import annotations

from aura.workflows.visitors import forget_visitor
from billing.actions import ThresholdReached, on_usage_threshold_reached
from conversations.visitors import forget_visitors_with
from webhooks.actions import do_emit_event


def connect() -> None:
    on_usage_threshold_reached(emit_usage_threshold_reached)
    forget_visitors_with(forget_visitor)


def emit_usage_threshold_reached(reached: ThresholdReached) -> None:
    """The ``usage.threshold_reached`` webhook event, once per threshold and month (with the alert row)."""
    do_emit_event(
        "usage.threshold_reached",
        {
            "threshold_percent": reached.threshold,
            "used_percent": reached.percent,
            "period_start": reached.period.start,
            "period_end": reached.period.end,
        },
        organization=reached.organization_id,
    )
