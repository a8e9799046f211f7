"""Serializers of the waiting list: joining it, and an entry as the API shows it."""

from django.conf import settings
from rest_framework import serializers

from core.models import WaitlistEntry


class WaitlistJoinInputSerializer(serializers.Serializer):
    quantity = serializers.IntegerField(
        min_value=1,
        max_value=settings.BOOKING_MAX_SEATS,
        help_text=f"Standard seats wanted, 1..{settings.BOOKING_MAX_SEATS}; an offer gives exactly this many.",
    )

    class Meta:
        ref_name = "WaitlistJoinInput"


class WaitlistEntryOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    show = serializers.IntegerField(source="show_id", read_only=True)
    quantity = serializers.IntegerField(read_only=True)
    status = serializers.ChoiceField(
        choices=WaitlistEntry.PUBLIC_STATUSES,
        source="public_status",
        read_only=True,
        help_text="`waiting`; `offered` (a held booking waits for you: `booking`, until `offer_expires_at`); "
        "`accepted` (you took it); `lapsed` (it expired or you cancelled it: the seats went to the next "
        "in line); `left`; `closed` (the show was cancelled or has started).",
    )
    position = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        min_value=1,
        help_text="While waiting: 1 when you are next in line for freed seats; null otherwise.",
    )
    created_at = serializers.DateTimeField(read_only=True)
    offered_at = serializers.DateTimeField(read_only=True, allow_null=True)
    booking = serializers.UUIDField(
        source="booking_id",
        read_only=True,
        allow_null=True,
        help_text="The offered booking (`offer: true`), once an offer was made.",
    )
    offer_expires_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="While offered: take the offer before then."
    )

    class Meta:
        ref_name = "WaitlistEntry"
