"""Small server-rendered SVG charts for the box-office dashboard: bars, nothing else.

Plain SVG strings, every label escaped; numbers are laid out here, never computed (the
figures come from core.box_office). Each chart is an <svg role="img"> with a <title>, and its
bars carry `data-value`, so the page reads well without colour and tests can read numbers.
"""

from collections.abc import Sequence
from datetime import datetime

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

SOLD, HELD, FREE, BAR, FAIL = "#1f6f8b", "#e0a526", "#d9dee3", "#3b7d3b", "#b5452f"
WIDTH = 640


def _svg(title: str, height: int, body: list[str], kind: str) -> SafeString:
    return mark_safe(  # noqa: S308  # nosec B308, B703 - every interpolated text is escaped
        f'<svg class="chart" data-chart="{escape(kind)}" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" height="{height}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="12">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, value, label: str) -> str:
    return format_html(
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" data-value="{}"><title>{}</title></rect>',
        round(x, 1),
        round(y, 1),
        round(max(w, 0), 1),
        round(h, 1),
        fill,
        value,
        label,
    )


def _text(x: float, y: float, text: str, anchor: str = "start") -> str:
    return format_html(
        '<text x="{}" y="{}" text-anchor="{}" fill="#222">{}</text>', round(x, 1), round(y, 1), anchor, text
    )


def seats_chart(shows: Sequence) -> SafeString:
    """One stacked bar per show: sold, held and free seats."""
    label_w, row_h = 190, 26
    bar_w = WIDTH - label_w - 70
    body = []
    for n, show in enumerate(shows):
        y = 8 + n * row_h
        body.append(_text(0, y + 15, f"{show.starts_at:%H:%M} {show.title[:22]}"))
        x = label_w
        for part, fill, name in ((show.sold, SOLD, "sold"), (show.held, HELD, "held"), (show.free, FREE, "free")):
            w = bar_w * part / show.capacity if show.capacity else 0
            body.append(_rect(x, y, w, 18, fill, part, f"{show.title}: {part} {name}"))
            x += w
        body.append(_text(WIDTH - 2, y + 15, f"{show.occupancy:.0f} %", "end"))
    return _svg("Seats sold, held and free by show", 16 + max(1, len(shows)) * row_h, body, "seats")


def rate_chart(series: Sequence[tuple[datetime, int]]) -> SafeString:
    """Bookings decided per minute, one bar per minute."""
    height, top, bottom, left = 170, 16, 22, 36
    plot_h = height - top - bottom
    peak = max((n for _, n in series), default=0)
    body = [_text(left - 4, top + 4, str(peak), "end"), _text(left - 4, height - bottom, "0", "end")]
    if series:
        step = (WIDTH - left) / len(series)
        for k, (minute, n) in enumerate(series):
            h = plot_h * n / peak if peak else 0
            body.append(_rect(left + k * step, top + plot_h - h, max(step - 1, 1), h, BAR, n, f"{minute:%H:%M}: {n}"))
        body.append(_text(left, height - 6, f"{series[0][0]:%H:%M}"))
        body.append(_text(WIDTH, height - 6, f"{series[-1][0]:%H:%M} UTC", "end"))
    return _svg("Bookings decided per minute", height, body, "rate")


def labelled_bars(items: Sequence[tuple[str, float]], *, title: str, kind: str, unit: str = "") -> SafeString:
    """Horizontal bars, one per (label, value)."""
    label_w, row_h = 150, 24
    bar_w = WIDTH - label_w - 90
    peak = max((v for _, v in items), default=0)
    body = []
    for n, (label, value) in enumerate(items):
        y = 6 + n * row_h
        w = bar_w * value / peak if peak else 0
        body.append(_text(0, y + 14, label))
        body.append(_rect(label_w, y, w, 16, FAIL if kind == "failures" else SOLD, value, f"{label}: {value}"))
        body.append(_text(label_w + w + 6, y + 14, f"{value:,.0f}{unit}"))
    return _svg(title, 12 + max(1, len(items)) * row_h, body, kind)
