"""Bookings in the admin: searched through indexes, listed without counting the table."""

from datetime import timedelta

from django.conf import settings
from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.functional import cached_property

from core import selectors
from core.models import BookedSeat, Booking, BookingLine


class BookedSeatInline(admin.TabularInline):
    model = BookedSeat
    extra = 0
    can_delete = False
    readonly_fields = ["seat_label", "show"]


class BookingLineInline(admin.TabularInline):
    model = BookingLine
    extra = 0
    can_delete = False
    # admitted_at: when the ticket was let in at the door (POST /checkins), never edited here:
    # admission is one conditional update (core/services/checkins.py), not a form.
    readonly_fields = ["seat_label", "seat_category", "ticket_type", "amount", "admitted_at"]

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


class EstimatedCountPaginator(Paginator):
    """Counts without reading the whole table, which at millions of rows took seconds per
    page: the unfiltered list uses PostgreSQL's own estimate of the table's size (kept by
    autovacuum's ANALYZE); a filtered one counts at most COUNT_CAP matching rows, so the
    count, and the pages offered, stop there."""

    COUNT_CAP = 10_000

    @cached_property
    def count(self) -> int:
        queryset: QuerySet = self.object_list  # type: ignore[assignment]  # the admin pages querysets
        if not queryset.query.where:
            estimate = selectors.table_row_estimate(queryset.model)
            if estimate > self.COUNT_CAP:
                return estimate
        return queryset.order_by()[: self.COUNT_CAP].count()


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
    # No filter lists every show (thousands of links, one query over them per page): a show
    # is found by its id in the search box. Filters on a date are links only, no query.
    list_filter = [
        "status",
        "failure_reason",
        OverdueFilter,
        ("show__starts_at", admin.DateFieldListFilter),
        ("created_at", admin.DateFieldListFilter),
        "show__screen",
    ]
    # A booking id or reference, a username or email, a show id, or the X-Request-ID of its submission:
    # matched by get_search_results (these fields only make the admin show the search box).
    search_fields = ["=id", "=reference", "=user__username", "=user__email", "=show__id", "=request_id"]
    search_help_text = (
        "Booking id, reference, username, user email, show id, or the request id (X-Request-ID) of a submission "
        f"of the last {selectors.REQUEST_ID_SEARCH_DAYS} days."
    )
    list_select_related = ["user", "show__movie", "show__screen"]
    # Neither a count of the whole table per page, nor a date hierarchy (its links come
    # from a scan of every booking's date).
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    inlines = [BookingLineInline, BookedSeatInline]
    # Bookings change state only through the services (API, workers); the admin reads them.
    readonly_fields = [field.name for field in Booking._meta.fields]

    def get_search_results(self, request, queryset, search_term):
        # Django's own search ORs a LIKE over every field (and the user's table): a scan of
        # every booking, seconds at a million, for each page and count.
        if not search_term.strip():
            return queryset, False
        return queryset.filter(selectors.booking_search_q(search_term)), False

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
