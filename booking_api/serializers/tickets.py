"""Serializers of tickets and check-ins."""

from rest_framework import serializers

from core.pricing import TICKET_TYPES
from core.tickets import CODE_LENGTH

CODE_HELP = (
    "The ticket's opaque signed code (URL-safe base64, 44 characters): what the QR code holds and what a "
    "scanner sends to POST /checkins. It is the ticket: whoever shows it at the door is let in, once."
)


class TicketOutputSerializer(serializers.Serializer):
    """One seat's ticket (documentation of the body ticket_representation builds)."""

    seat = serializers.CharField(help_text="The seat label, e.g. E7.")
    ticket_type = serializers.ChoiceField(choices=TICKET_TYPES)
    code = serializers.CharField(min_length=CODE_LENGTH, max_length=CODE_LENGTH, help_text=CODE_HELP)
    qr = serializers.URLField(
        help_text="Absolute URL of a PNG QR code of `code`; needs no Authorization header (an <img> tag can load it)."
    )

    class Meta:
        ref_name = "Ticket"


class CheckinInputSerializer(serializers.Serializer):
    # Any string up to this length reaches the signature check (a forged or garbled code is
    # a 404, as the contract says); whitespace at the ends, which a barcode scanner may add
    # (a trailing Enter), is trimmed.
    code = serializers.CharField(max_length=256, help_text="A ticket code as scanned (see Ticket.code).")

    class Meta:
        ref_name = "CheckinInput"


class CheckinOutputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["admitted"])
    show = serializers.IntegerField(help_text="The show the ticket is for: check it is the one at this door.")
    seat = serializers.CharField()
    admitted_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Checkin"
