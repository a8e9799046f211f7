"""The Django admin for operators: the catalogue, bookings to search and inspect, and show
cancellation (through the same service as the API, behind a confirmation page).

Every catalogue write goes through the services the API uses, so the admin enforces the
same rules (a show with bookings is not moved, its end follows its start, a screen does not
shrink under held seats, a deactivated movie stops selling); a refusal is a form error.
"""

from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import DatabaseError, transaction
from django.db.models import QuerySet
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property

from core import db_errors, selectors
from core.exceptions import DomainError
from core.models import BookedSeat, Booking, BookingLine, Movie, Screen, Show
from core.pricing import TICKET_TYPES, money
from core.seating import CATEGORIES
from core.services import catalogue
from core.services.catalogue import show_cancel

BUSY = "Another operation (a booking decision or a cancellation) holds this record right now: save again."


class ServiceForm(forms.ModelForm):
    """A model form that saves through a catalogue service, as its last validation step.

    The admin calls save_model only once the form is valid, and an error raised there is a
    500; run here, a service's refusal (a DomainError) becomes form errors and the page is
    shown again. The service's result becomes the form's instance, so save_model has nothing
    left to do. The admin wraps the request in a transaction: the write commits with it (and
    these admins have no inlines whose errors could follow a successful save)."""

    def create(self, data: dict):
        raise NotImplementedError

    def update(self, instance, changes: dict):
        raise NotImplementedError

    def clean(self):
        cleaned = super().clean()
        if self.errors or cleaned is None:
            return cleaned
        try:
            with transaction.atomic():
                if self.instance.pk is None:
                    saved = self.create(dict(cleaned))
                else:
                    fresh = type(self.instance).objects.get(pk=self.instance.pk)
                    saved = self.update(fresh, {name: cleaned[name] for name in self.changed_data if name in cleaned})
        except DomainError as error:
            self._add_domain_error(error)
        except DatabaseError as error:
            # A row held past the lock timeout (a decision, a cancellation): the savepoint
            # is rolled back and the operator may simply save again.
            if not db_errors.is_contention(error):
                raise
            self.add_error(None, BUSY)
        else:
            self.instance = saved
        return cleaned

    def _add_domain_error(self, error: DomainError) -> None:
        fields = {name: errors for name, errors in error.details.items() if name in self.fields}
        for name, errors in fields.items():
            self.add_error(name, errors)
        if not fields:
            self.add_error(None, error.message)


class ServiceAdmin(admin.ModelAdmin):
    """Saves happen in the form (ServiceForm.clean); nothing is left to write here."""

    def save_model(self, request, obj, form, change) -> None:
        pass


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
        fields = ["movie", "screen", "starts_at", "price"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
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
    list_display = ["id", "movie", "screen", "starts_at", "ends_at", "price", "status"]
    list_filter = ["status", "screen"]
    search_fields = ["=id", "movie__title"]
    date_hierarchy = "starts_at"
    readonly_fields = ["ends_at", "status"]
    list_select_related = ["movie", "screen"]
    autocomplete_fields = ["movie"]
    actions = ["cancel_shows"]
    # Adds a "Cancel this show" button to a scheduled show's page.
    change_form_template = "admin/core/show/change_form.html"

    def get_readonly_fields(self, request, obj=None):
        # Once a show has live bookings it cannot be moved (show_update refuses it too).
        if (
            obj is not None
            and obj.bookings.exclude(status__in=[Booking.Status.FAILED, Booking.Status.CANCELLED]).exists()
        ):
            return [*self.readonly_fields, "movie", "screen", "starts_at"]
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
