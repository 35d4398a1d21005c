"""Charts drawn on the server as inline SVG (no JavaScript, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup


def compact_money(value: float) -> str:
    """$1.2M, $340k, $950; -$1.2M below zero."""
    magnitude = abs(value)
    sign = "-" if value < 0 and round(magnitude) > 0 else ""
    if magnitude >= 1e9:
        return f"{sign}${magnitude / 1e9:.1f}B"
    if magnitude >= 1e6:
        return f"{sign}${magnitude / 1e6:.1f}M"
    if magnitude >= 1e4:
        return f"{sign}${magnitude / 1e3:.0f}k"
    return f"{sign}${magnitude:,.0f}"


def bar_chart(bars: Sequence[tuple[str, float]], *, title: str, css_class: str = "chart") -> Markup:
    """A horizontal bar chart: one labelled bar per (label, value), values as compact money."""
    row_height, label_width, value_width, bar_width = 34, 90, 80, 420
    width = label_width + bar_width + value_width
    height = row_height * len(bars) + 10
    largest = max((value for _, value in bars if value > 0), default=1.0)
    parts = [
        f'<svg class="{css_class}" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for position, (label, value) in enumerate(bars):
        top = 5 + position * row_height
        length = max(0.0, value) / largest * bar_width
        tier_class = "bar-" + "".join(ch for ch in label.lower() if ch.isalnum())
        parts.append(
            f'<g><text x="{label_width - 10}" y="{top + 21}" text-anchor="end" class="bar-label">{escape(label)}</text>'
            f'<rect x="{label_width}" y="{top + 4}" width="{length:.1f}" height="{row_height - 10}" rx="3" '
            f'class="bar {tier_class}"><title>{escape(label)}: {escape(compact_money(value))}</title></rect>'
            f'<text x="{label_width + length + 6:.1f}" y="{top + 21}" class="bar-value">'
            f"{escape(compact_money(value))}</text></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
