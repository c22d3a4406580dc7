"""Amounts with their currency symbol, minutes as whole numbers: ``{% load billing_format %}``."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django import template
from django.conf import settings

register = template.Library()

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CHF": "CHF ", "CAD": "CA$", "AUD": "A$", "INR": "₹"}


def format_money(value: Decimal | int | float | None, currency: str | None = None, places: int = 2) -> str:
    """$1,234.50; −$3.20; an unknown currency code is written before the number ("SEK 12.00")."""
    if value is None or value == "":
        return "—"
    code = (currency or settings.AURA_BILLING_CURRENCY).upper()
    symbol = SYMBOLS.get(code, f"{code} ")
    amount = Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = "−" if amount < 0 else ""
    return f"{sign}{symbol}{abs(amount):,.{places}f}"


@register.filter
def money(value: Decimal | int | float | None, currency: str | None = None) -> str:
    return format_money(value, currency)


@register.filter
def minutes(value: Decimal | int | float | None) -> str:
    """Whole minutes, with "under 1" for a few seconds (never "0" when something was used)."""
    if value is None:
        return "—"
    amount = Decimal(str(value))
    if 0 < amount < Decimal("0.5"):
        return "under 1"
    return f"{int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP)):,}"


@register.filter
def unit_price(value: Decimal | int | float | None, currency: str | None = None) -> str:
    """A price per unit with the places it needs, 2 to 4: $0.003 per 1,000 tokens is not "$0.00"."""
    if value is None or value == "":
        return "—"
    exponent = Decimal(str(value)).normalize().as_tuple().exponent
    places = min(4, max(2, -exponent if isinstance(exponent, int) else 2))
    return format_money(value, currency, places)
