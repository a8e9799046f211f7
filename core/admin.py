"""The Django admin for operators: the catalogue, bookings to search and inspect, and show
cancellation (through the same service as the API, behind a confirmation page)."""

from datetime import timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from core import selectors
from core.models import BookedSeat, Booking, BookingLine, Movie, Screen, Show, ShowPrice
from core.services.catalogue import show_cancel


@admin.register(Movie)
class MovieAdmin(admin.ModelAdmin):
    list_display = ["title", "genre", "language", "rating", "duration_minutes", "release_date", "is_active"]
    list_filter = ["is_active", "genre", "language"]
    search_fields = ["title"]


@admin.register(Screen)
class ScreenAdmin(admin.ModelAdmin):
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


class ShowPriceInline(admin.TabularInline):
    model = ShowPrice
    extra = 0
    verbose_name_plural = "prices (a pair not listed: the show's price, plus the premium surcharge on premium seats)"


@admin.register(Show)
class ShowAdmin(admin.ModelAdmin):
    list_display = ["id", "movie", "screen", "starts_at", "ends_at", "price", "status"]
    list_filter = ["status", "screen"]
    search_fields = ["=id", "movie__title"]
    date_hierarchy = "starts_at"
    readonly_fields = ["ends_at", "status"]
    list_select_related = ["movie", "screen"]
    autocomplete_fields = ["movie"]
    actions = ["cancel_shows"]
    inlines = [ShowPriceInline]
    # Adds a "Cancel this show" button to a scheduled show's page.
    change_form_template = "admin/core/show/change_form.html"

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
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/core/show/cancel_confirmation.html", context)


class BookedSeatInline(admin.TabularInline):
    model = BookedSeat
    extra = 0
    can_delete = False
    readonly_fields = ["seat_label", "show"]


class BookingLineInline(admin.TabularInline):
    model = BookingLine
    extra = 0
    can_delete = False
    readonly_fields = ["seat_label", "seat_category", "ticket_type", "amount"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class OverdueFilter(admin.SimpleListFilter):
    """Pending past the recovery grace period: what the recovery job is about to re-queue."""

    title = "waiting"
    parameter_name = "waiting"

    def lookups(self, request, model_admin):
        return [("overdue", f"pending over {settings.BOOKING_RECOVERY_GRACE_SECONDS} s")]

    def queryset(self, request, queryset):
        if self.value() == "overdue":
            cutoff = timezone.now() - timedelta(seconds=settings.BOOKING_RECOVERY_GRACE_SECONDS)
            return queryset.filter(status=Booking.Status.PENDING, created_at__lt=cutoff)
        return queryset


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "reference",
        "user",
        "show",
        "status",
        "quantity",
        "total",
        "failure_reason",
        "created_at",
        "decided_at",
    ]
    list_filter = [
        "status",
        "failure_reason",
        OverdueFilter,
        ("show__starts_at", admin.DateFieldListFilter),
        "show__screen",
        "show",
    ]
    # A booking id or reference, a user name or email, a show id, or the X-Request-ID of its submission.
    search_fields = ["=id", "=reference", "user__username", "=user__email", "=show__id", "=request_id"]
    search_help_text = (
        "Booking id, reference, username, user email, show id, or the request id (X-Request-ID) of its submission."
    )
    list_select_related = ["user", "show__movie", "show__screen"]
    date_hierarchy = "created_at"
    inlines = [BookingLineInline, BookedSeatInline]
    # Bookings change state only through the services (API, workers); the admin reads them.
    readonly_fields = [field.name for field in Booking._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
