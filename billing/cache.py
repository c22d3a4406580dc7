"""This process's short-lived copy of price rows (filled by ``billing.queries``; a price's save empties
it, so it sits below the models and imports none of them)."""

from __future__ import annotations

PRICE_CACHE_S = 60.0
price_rows_cache: dict[tuple[frozenset[str], frozenset[str]], tuple[float, list[tuple]]] = {}


def forget_cached_prices() -> None:
    price_rows_cache.clear()
