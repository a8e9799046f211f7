"""Tickets of a confirmed booking, their QR codes, and check-in at the door."""

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from drf_yasg import openapi
from drf_yasg.utils import swagger_auto_schema
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from booking_api.openapi import errors
from booking_api.permissions import IsScanner
from booking_api.serializers.errors import ErrorSerializer
from booking_api.serializers.tickets import CheckinInputSerializer, CheckinOutputSerializer, TicketOutputSerializer
from booking_api.throttles import AnonThrottle, CheckinThrottle
from booking_api.views.common import BaseApi
from core import selectors, tickets
from core.services.checkins import ticket_admit

_TIMESTAMP = serializers.DateTimeField(read_only=True).to_representation


def ticket_representation(line, *, request) -> dict:
    code = tickets.ticket_code(line.ticket_id)
    return {
        "seat": line.seat_label,
        "ticket_type": line.ticket_type,
        "code": code,
        "qr": request.build_absolute_uri(reverse("ticket-qr", kwargs={"code": code})),
    }


class BookingTicketListApi(BaseApi):
    @swagger_auto_schema(
        operation_id="bookings_tickets",
        operation_description=(
            "The tickets of a confirmed booking, one per seat (a booking has at most BOOKING_MAX_SEATS: "
            "not paginated). Any other status is a 409 `booking_not_confirmed`; another user's booking a 404."
        ),
        tags=["bookings"],
        responses={
            200: openapi.Response("One ticket per seat.", TicketOutputSerializer(many=True)),
            **errors(401, 404),
            409: openapi.Response(
                "`booking_not_confirmed`: pending, held (not paid yet), failed, cancelled or expired.",
                ErrorSerializer,
            ),
        },
    )
    def get(self, request, booking_id):
        lines = selectors.booking_tickets(booking_id=booking_id, user=request.user)
        return Response([ticket_representation(line, request=request) for line in lines])


class _JsonErrorsWhateverTheAccept(BaseContentNegotiation):
    """The image route's errors are JSON whatever the client accepts: an <img> tag or a
    client asking for `image/png` only gets the error shape, not a 406."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class TicketQrApi(BaseApi):
    # The code in the path is the credential (signed, shown to its holder): no JWT, since an
    # <img src> cannot send an Authorization header. A forged code is a 404 before any query.
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AnonThrottle]
    content_negotiation_class = _JsonErrorsWhateverTheAccept

    @swagger_auto_schema(
        operation_id="tickets_qr",
        operation_description=(
            "A PNG QR code of a ticket code (from GET /bookings/{id}/tickets, as its `qr` URL). No "
            "Authorization: the code is the credential, and an <img> tag can load it. A code this service "
            "did not sign is a 404."
        ),
        tags=["tickets"],
        security=[],
        produces=["image/png", "application/json"],
        manual_parameters=[
            openapi.Parameter(
                "code", openapi.IN_PATH, type=openapi.TYPE_STRING, required=True, description="A ticket code."
            )
        ],
        responses={
            200: openapi.Response(
                "The QR code (PNG).",
                openapi.Schema(type=openapi.TYPE_FILE),
                headers={
                    "Cache-Control": {
                        "type": "string",
                        "description": "private, max-age=TICKET_QR_MAX_AGE: the image never changes, and it "
                        "is a credential, so no shared cache keeps it.",
                    }
                },
            ),
            **errors(404),
        },
    )
    def get(self, request, code: str):
        response = HttpResponse(tickets.ticket_qr(code=code), content_type="image/png")
        response["Cache-Control"] = f"private, max-age={settings.TICKET_QR_MAX_AGE}"
        return response


class CheckinCreateApi(BaseApi):
    permission_classes = [IsScanner]
    # A door scans fast from few accounts: a rate of its own (THROTTLE_CHECKIN) instead of
    # the per-user default, so that a busy door is never throttled as one busy user.
    throttle_classes = [CheckinThrottle]

    @swagger_auto_schema(
        operation_id="checkins_create",
        operation_description=(
            "Admit a ticket at the door (staff, or users in the `scanners` group). Each code admits once: "
            "a second scan is a 409 `already_admitted` with the first `admitted_at` in `details`; a ticket "
            "of a cancelled, refunded or expired booking a 409 `ticket_void`; a forged or unknown code a "
            "404 `ticket_not_found`."
        ),
        tags=["checkins"],
        request_body=CheckinInputSerializer,
        responses={
            200: CheckinOutputSerializer,
            **errors(400, 401, 403, 404),
            409: openapi.Response(
                "`already_admitted` (`details.admitted_at`: the first admission) or `ticket_void` "
                "(`details.booking_status`).",
                ErrorSerializer,
            ),
        },
    )
    def post(self, request):
        serializer = CheckinInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        admission = ticket_admit(code=serializer.validated_data["code"])
        return Response(
            {
                "status": "admitted",
                "show": admission.show_id,
                "seat": admission.seat,
                "admitted_at": _TIMESTAMP(admission.admitted_at),
            }
        )
