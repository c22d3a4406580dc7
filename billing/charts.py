"""Inline SVG charts, drawn in Python: no JavaScript, no CDN, they print. Labels are escaped."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#4f46e5", "#f59e0b", "#10b981", "#ef4444", "#0ea5e9", "#a855f7", "#64748b", "#84cc16")
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 24, 36


FONT_PX = 12  # every label: legible at the chart's full width (and ≥ 11 px down to ~92 % of it)


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round tick values from 0 up to at least ``top``: steps of 1, 2, 2.5 or 5 × a power of ten."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    ticks = [0.0]
    while ticks[-1] < top - 1e-12:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _fmt(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k"
    if abs(value) >= 10 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.3g}"


def bar_chart(
    labels: Sequence[str],
    series: dict[str, Sequence[float | Decimal]],
    *,
    title: str,
    unit: str = "",
    width: int = 640,
    height: int = 220,
    colors: Sequence[str] = PALETTE,
) -> SafeString:
    """Grouped bars: one group per label, one bar per series. Every bar has a tooltip with its value."""
    names = list(series)
    values = {name: [float(v) for v in series[name]] for name in names}
    for name in names:
        if len(values[name]) != len(labels):
            raise ValueError(f"series {name!r} has {len(values[name])} values for {len(labels)} labels")
    top = max([v for vs in values.values() for v in vs] + [0.0])
    ticks = nice_ticks(top)
    scale_max = ticks[-1]
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    group_w = plot_w / max(1, len(labels))
    bar_w = max(1.0, group_w * 0.8 / max(1, len(names)))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="aura-chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px;min-width:{width * 11 // FONT_PX}px" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{_LEFT}" y="15" font-size="{FONT_PX + 1}" font-weight="bold">{escape(title)}</text>',
    ]
    for tick in ticks:
        fraction = tick / scale_max
        y = _TOP + plot_h - plot_h * fraction
        parts.append(
            f'<line x1="{_LEFT}" x2="{width - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{_LEFT - 4}" y="{y + 4:.1f}" font-size="{FONT_PX}" text-anchor="end">{escape(_fmt(tick))}</text>'
        )
    every = max(1, -(-len(labels) // max(1, int(plot_w // (FONT_PX * 5)))))  # labels never overlap
    for index, label in enumerate(labels):
        x0 = _LEFT + index * group_w + group_w * 0.1
        for position, name in enumerate(names):
            value = values[name][index]
            bar_h = plot_h * value / scale_max
            x = x0 + position * bar_w
            y = _TOP + plot_h - bar_h
            color = colors[position % len(colors)]
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{bar_h:.1f}" fill="{color}">'
                f"<title>{escape(label)} · {escape(name)}: {escape(_fmt(value))} {escape(unit)}</title></rect>"
            )
        if index % every == 0:
            parts.append(
                f'<text x="{x0 + group_w * 0.4:.1f}" y="{height - _BOTTOM + 15}" font-size="{FONT_PX}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    if len(names) > 1:
        x = _LEFT
        for position, name in enumerate(names):
            color = colors[position % len(colors)]
            parts.append(f'<rect x="{x}" y="{height - 12}" width="10" height="10" fill="{color}"/>')
            parts.append(f'<text x="{x + 14}" y="{height - 2}" font-size="{FONT_PX}">{escape(name)}</text>')
            x += 24 + 7 * len(name)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every interpolated text went through escape()


def meter(percent: float | Decimal | None, *, width: int = 320) -> SafeString:
    """A horizontal gauge of a share of the plan; the 80 % and 100 % marks are drawn."""
    value = float(percent or 0)
    shown = min(value, 150.0) / 150.0 * width
    color = "#10b981" if value < 80 else "#f59e0b" if value < 100 else "#ef4444"
    marks = "".join(
        f'<line x1="{width * mark / 150:.1f}" x2="{width * mark / 150:.1f}" y1="0" y2="18" stroke="#333"/>'
        for mark in (80, 100)
    )
    label = "no allowance" if percent is None else f"{value:.1f} %"
    return mark_safe(  # numbers only
        f'<svg xmlns="http://www.w3.org/2000/svg" class="aura-meter" viewBox="0 0 {width} 34" width="{width}" '
        f'role="img" aria-label="{label} of the plan">'
        f'<rect x="0" y="0" width="{width}" height="18" fill="#eee"/>'
        f'<rect x="0" y="0" width="{shown:.1f}" height="18" fill="{color}"/>{marks}'
        f'<text x="0" y="31" font-size="{FONT_PX}">{label} of the plan (marks at 80 % and 100 %)</text></svg>'
    )
