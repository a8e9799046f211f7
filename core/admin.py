"""The Django admin for operators: the catalogue, and bookings to search and inspect."""

from django.contrib import admin

from core.models import BookedSeat, Booking, Movie, Screen, Show


@admin.register(Movie)
class MovieAdmin(admin.ModelAdmin):
    list_display = ["title", "genre", "language", "rating", "duration_minutes", "release_date", "is_active"]
    list_filter = ["is_active", "genre", "language"]
    search_fields = ["title"]


@admin.register(Screen)
class ScreenAdmin(admin.ModelAdmin):
    list_display = ["name", "rows", "seats_per_row", "total_seats"]
    search_fields = ["name"]


@admin.register(Show)
class ShowAdmin(admin.ModelAdmin):
    list_display = ["id", "movie", "screen", "starts_at", "ends_at", "price", "status"]
    list_filter = ["status", "screen"]
    search_fields = ["movie__title"]
    date_hierarchy = "starts_at"
    readonly_fields = ["ends_at", "status"]
    list_select_related = ["movie", "screen"]
    autocomplete_fields = ["movie"]


class BookedSeatInline(admin.TabularInline):
    model = BookedSeat
    extra = 0
    can_delete = False
    readonly_fields = ["seat_label", "show"]


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "show", "status", "quantity", "failure_reason", "created_at", "decided_at"]
    list_filter = ["status", "failure_reason", "show"]
    search_fields = ["=id", "user__username", "=show__id"]
    list_select_related = ["user", "show__movie", "show__screen"]
    date_hierarchy = "created_at"
    inlines = [BookedSeatInline]
    # Bookings change state only through the services (API, workers); the admin reads them.
    readonly_fields = [field.name for field in Booking._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
