"""Partner webhooks in the admin: staff register endpoints (URL and secret), resume paused
ones, and read the delivery log. Deliveries are written by the services only."""

import uuid

from django.contrib import admin, messages
from django.db.models import Q

from core.admin.bookings import EstimatedCountPaginator
from core.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from core.services import partner_events


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["name", "url", "is_active", "paused_at", "consecutive_failures", "failing_since", "created_at"]
    list_filter = ["is_active"]
    readonly_fields = ["paused_at", "pause_reason", "consecutive_failures", "failing_since", "created_at"]
    fields = ["name", "url", "secret", "is_active", *readonly_fields]
    actions = ["resume"]

    @admin.action(description="Resume the selected paused endpoints (their waiting events go out in order)")
    def resume(self, request, queryset):
        paused = list(queryset.filter(paused_at__isnull=False))
        for endpoint in paused:
            partner_events.webhook_endpoint_resume(endpoint=endpoint)
        self.message_user(request, f"{len(paused)} endpoint(s) resumed.", messages.SUCCESS)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["number", "started_at", "duration_ms", "status_code", "error"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log, read-only: one row per event and endpoint, each attempt inline."""

    list_display = [
        "id",
        "event",
        "booking_id",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "created_at",
        "delivered_at",
        "next_attempt_at",
    ]
    list_filter = ["status", "event", "endpoint"]
    search_fields = ["=booking_id", "=event_id"]
    search_help_text = "Booking id or event id."
    list_select_related = ["endpoint"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    inlines = [WebhookAttemptInline]
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            value = uuid.UUID(term)
        except ValueError:
            return queryset.none(), False
        return queryset.filter(Q(booking_id=value) | Q(event_id=value)), False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
