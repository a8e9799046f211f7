"""The waiting lists in the admin: read-only, found by show id or user."""

from django.contrib import admin

from core.models import WaitlistEntry


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(admin.ModelAdmin):
    list_display = ["id", "show", "user", "quantity", "status", "created_at", "offered_at", "booking"]
    list_filter = ["status", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["=show__id", "=user__username", "=user__email"]
    search_help_text = "Show id, username or user email."
    list_select_related = ["user", "show__movie", "show__screen", "booking"]
    # Entries move only through core/services/waitlist.py (the API, a cancel, an expiry).
    readonly_fields = [field.name for field in WaitlistEntry._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
