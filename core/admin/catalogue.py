"""Movies, screens and shows in the admin; show cancellation behind a confirmation page."""

from decimal import Decimal, InvalidOperation

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core import selectors
from core.admin.common import ServiceAdmin, ServiceForm
from core.models import Movie, Screen, Show
from core.pricing import TICKET_TYPES, money
from core.seating import CATEGORIES
from core.services import catalogue
from core.services.catalogue import show_cancel


class MovieForm(ServiceForm):
    class Meta:
        model = Movie
        fields = list(Movie.EDITABLE_FIELDS)

    def create(self, data):
        return catalogue.movie_create(**data)

    def update(self, instance, changes):
        return catalogue.movie_update(movie=instance, **changes)


@admin.register(Movie)
class MovieAdmin(ServiceAdmin):
    form = MovieForm
    list_display = ["title", "genre", "language", "rating", "duration_minutes", "release_date", "is_active"]
    list_filter = ["is_active", "genre", "language"]
    search_fields = ["title"]


class ScreenForm(ServiceForm):
    class Meta:
        model = Screen
        fields = ["name", "rows", "seats_per_row", "premium_rows", "accessible_seats", "companion_seats"]

    def create(self, data):
        return catalogue.screen_create(**data)

    def update(self, instance, changes):
        return catalogue.screen_update(screen=instance, **changes)


@admin.register(Screen)
class ScreenAdmin(ServiceAdmin):
    form = ScreenForm
    list_display = ["name", "rows", "seats_per_row", "total_seats", "premium_rows", "accessible_seats"]
    search_fields = ["name"]
    fieldsets = [
        (None, {"fields": ["name", "rows", "seats_per_row"]}),
        (
            "Seat categories",
            {
                "fields": ["premium_rows", "accessible_seats", "companion_seats"],
                "description": "Comma-separated: premium row letters (H,J), wheelchair spaces (A1,A2) and "
                "their companion seats (A3,A4). Every other seat is standard.",
            },
        ),
    ]


class ShowForm(ServiceForm):
    # Explicit prices, saved by the show services with the show (an inline formset would be
    # saved after the service, outside its checks).
    prices = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 40}),
        help_text="One price per line: ticket type, seat category, amount, e.g. <code>child standard 6.50</code>. "
        "A pair not listed costs the show's price (adult, standard), plus the premium surcharge on "
        "premium seats; accessible and companion seats cost the standard price.",
    )

    class Meta:
        model = Show
        fields = ["movie", "screen", "starts_at", "price", "payment_required"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None and "payment_required" in self.fields:
            self.fields["payment_required"].initial = settings.BOOKING_PAYMENT_REQUIRED
        if self.instance.pk is not None:
            self.initial["prices"] = "\n".join(
                f"{p.ticket_type} {p.seat_category} {p.amount}" for p in self.instance.prices.all()
            )

    def clean_prices(self) -> list[dict]:
        prices, errors = [], []
        for number, line in enumerate(self.cleaned_data["prices"].splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split()
            try:
                ticket_type, category, amount = parts
                amount = Decimal(amount)
            except (ValueError, InvalidOperation):
                errors.append(f"Line {number}: write a ticket type, a seat category and an amount.")
                continue
            if ticket_type not in TICKET_TYPES or category not in CATEGORIES or not amount.is_finite() or amount < 0:
                errors.append(
                    f"Line {number}: one of {', '.join(TICKET_TYPES)}; one of {', '.join(CATEGORIES)}; 0 or more."
                )
                continue
            prices.append({"ticket_type": ticket_type, "seat_category": category, "amount": money(amount)})
        if errors:
            raise forms.ValidationError(errors)
        return prices

    def create(self, data):
        return catalogue.show_create(**data)

    def update(self, instance, changes):
        return catalogue.show_update(show=instance, **changes)


@admin.register(Show)
class ShowAdmin(ServiceAdmin):
    form = ShowForm
    list_display = ["id", "movie", "screen", "starts_at", "ends_at", "price", "payment_required", "status"]
    list_filter = ["status", "payment_required", "screen"]
    search_fields = ["=id", "movie__title"]
    date_hierarchy = "starts_at"
    readonly_fields = ["ends_at", "status"]
    list_select_related = ["movie", "screen"]
    autocomplete_fields = ["movie"]
    actions = ["cancel_shows"]
    # Adds a "Cancel this show" button to a scheduled show's page.
    change_form_template = "admin/core/show/change_form.html"

    def get_readonly_fields(self, request, obj=None):
        # Once a show has live bookings it cannot be moved or change how it sells
        # (show_update refuses it too).
        if obj is not None and selectors.show_has_live_bookings(show_id=obj.pk):
            return [*self.readonly_fields, "movie", "screen", "starts_at", "payment_required"]
        return self.readonly_fields

    def get_urls(self):
        cancel = path("<path:object_id>/cancel/", self.admin_site.admin_view(self.cancel_view), name="core_show_cancel")
        return [cancel, *super().get_urls()]

    @admin.action(description="Cancel selected shows…", permissions=["change"])
    def cancel_shows(self, request, queryset):
        shows = list(queryset.select_related("movie", "screen"))
        if request.POST.get("post") != "yes":
            return self._confirmation(request, shows=shows, from_action=True)
        self._cancel(request, shows)
        return None

    def cancel_view(self, request, object_id):
        """GET: what cancelling the show would do, and a confirm button. POST: cancel it."""
        show = self.get_object(request, unquote(object_id))
        if show is None:
            raise Http404("No such show.")
        if not self.has_change_permission(request, show):
            raise PermissionDenied
        if request.method == "POST":
            self._cancel(request, [show])
            return HttpResponseRedirect(reverse("admin:core_show_change", args=[show.pk]))
        return self._confirmation(request, shows=[show], from_action=False)

    def _cancel(self, request, shows: list[Show]) -> None:
        for show in shows:
            impact = selectors.show_cancellation_impact(show_id=show.pk)
            if show.status == Show.Status.CANCELLED:
                self.message_user(request, f"{show} was already cancelled.", messages.WARNING)
                continue
            show_cancel(show=show)
            self.log_change(request, show, "Cancelled the show from the admin.")
            self.message_user(
                request,
                f"Cancelled {show}: {impact['pending']} pending booking(s) failed, "
                f"{impact['confirmed']} confirmed booking(s) cancelled, {impact['seats']} seat(s) freed.",
                messages.SUCCESS,
            )

    def _confirmation(self, request, *, shows: list[Show], from_action: bool) -> TemplateResponse:
        rows = [{"show": show, **selectors.show_cancellation_impact(show_id=show.pk)} for show in shows]
        context = {
            **self.admin_site.each_context(request),
            "title": "Cancel shows?" if len(shows) > 1 else "Cancel this show?",
            "opts": self.model._meta,
            "rows": rows,
            "to_cancel": [row for row in rows if row["show"].status != Show.Status.CANCELLED],
            "from_action": from_action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/core/show/cancel_confirmation.html", context)
