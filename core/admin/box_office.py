"""The box-office dashboard, beside the admin (/admin/box-office/, staff only through the
admin site's own login): a page, and its panel that the page fetches again every few
seconds (core/static/core/box_office.js) instead of reloading. Figures: core.box_office."""

from datetime import date

from django.contrib import admin
from django.template.response import TemplateResponse

from core import box_office
from core.admin import charts

REFRESH_SECONDS = 5


def _scope(request) -> tuple[date, int | None]:
    """?day=YYYY-MM-DD (default: today in TIME_ZONE) and ?show=<id>; anything else is ignored."""
    try:
        day = date.fromisoformat(request.GET.get("day", ""))
    except ValueError:
        day = box_office.box_office_today()
    show = request.GET.get("show", "")
    return day, int(show) if show.isdigit() and len(show) <= 18 else None


def _panel_context(request) -> dict:
    day, show_id = _scope(request)
    figures = box_office.box_office_get(day=day, show_id=show_id)
    latency = [(name, value) for name, value in figures.latency_ms.items() if value is not None]
    return {
        "figures": figures,
        "show_id": show_id,
        "seats_svg": charts.seats_chart(figures.shows),
        "rate_svg": charts.rate_chart(figures.decided_per_minute),
        "latency_svg": charts.labelled_bars(latency, title="Acceptance to decision (ms)", kind="latency", unit=" ms"),
        "failures_svg": charts.labelled_bars(
            list(figures.failures.items()), title="Failed bookings by reason", kind="failures"
        ),
    }


def page(request):
    panel_context = _panel_context(request)
    context = {
        **admin.site.each_context(request),
        **panel_context,
        "title": "Box office",
        "day": panel_context["figures"].day,
        "refresh_seconds": REFRESH_SECONDS,
        "query": request.GET.urlencode(),
    }
    return TemplateResponse(request, "admin/core/box_office.html", context)


def panel(request):
    return TemplateResponse(request, "admin/core/box_office_panel.html", _panel_context(request))
