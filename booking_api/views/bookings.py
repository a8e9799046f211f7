"""Submit, poll, cancel and list bookings (authenticated)."""

import re

from drf_yasg import openapi
from drf_yasg.utils import no_body, swagger_auto_schema
from rest_framework import status
from rest_framework.response import Response

from booking_api.openapi import PAGE_PARAMS, errors, paginated
from booking_api.serializers.bookings import (
    BookingCreateInputSerializer,
    BookingListQuerySerializer,
    BookingOutputSerializer,
    booking_create_input,
    booking_representation,
)
from booking_api.serializers.errors import ErrorSerializer
from booking_api.views.common import BaseApi, paginated_response, valid_query
from core import selectors
from core.exceptions import ValidationFailed
from core.polling import booking_retry_after
from core.services.cancellation import booking_cancel
from core.services.submission import booking_submit
from core.services.waitlist import booking_confirm_offer

TAGS = ["bookings"]
# Printable ASCII without spaces at the ends: what a client library generates (UUIDs, ...).
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$")

IDEMPOTENCY_HEADER = openapi.Parameter(
    "Idempotency-Key",
    openapi.IN_HEADER,
    type=openapi.TYPE_STRING,
    required=False,
    description="Up to 255 printable ASCII characters. Replaying a key returns the original booking; "
    "the same key with a different body is a 409.",
    pattern=_IDEMPOTENCY_KEY.pattern,
    min_length=1,
    max_length=255,
)
RETRY_AFTER = {
    "Retry-After": {
        "type": "integer",
        "description": "Seconds to wait before polling again; longer the further back in the queue.",
    }
}
BOOKING_ACCEPTED = openapi.Response(
    "Accepted: the booking is pending until a worker decides it.",
    BookingOutputSerializer,
    headers={"Location": {"type": "string", "description": "URL of the booking to poll."}, **RETRY_AFTER},
)


BOOKINGS_CREATE_DESCRIPTION = (
    "Submit a booking: exact `seats`, or a `quantity` of best available seats (within `seat_category`, "
    "standard by default; with `accessible: true`, a wheelchair space first, then its companion seats). "
    "`tickets` counts ticket types (default all adult). A companion seat needs a wheelchair space in the "
    "same booking (400). The worker decides it in acceptance order: confirmed with `reference`, `total`, "
    "`currency` and `lines` (prices fixed then), or failed with `failure_reason` (`seats_unavailable`, "
    "`sold_out`, `limit_exceeded` past BOOKING_MAX_SEATS_PER_USER_PER_SHOW seats of the show, ...)."
)


def _idempotency_key(request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.match(key):
        raise ValidationFailed(
            "Invalid Idempotency-Key header.",
            details={"Idempotency-Key": ["Use 1 to 255 printable ASCII characters."]},
        )
    return key


def _booking_response(booking, *, http_status: int = status.HTTP_200_OK) -> Response:
    response = Response(booking_representation(booking), status=http_status)
    retry_after = booking_retry_after(booking)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _set_queue_positions(page) -> None:
    selectors.bookings_set_queue_positions(bookings=page)


class BookingListCreateApi(BaseApi):
    @swagger_auto_schema(
        operation_id="bookings_create",
        operation_description=BOOKINGS_CREATE_DESCRIPTION,
        tags=TAGS,
        request_body=BookingCreateInputSerializer,
        manual_parameters=[IDEMPOTENCY_HEADER],
        responses={
            202: BOOKING_ACCEPTED,
            **errors(400, 401, 409, 503),
            429: openapi.Response(
                "`too_many_pending`: the caller already has BOOKING_MAX_PENDING_PER_USER bookings pending; "
                "or the rate limit (`throttled`). Retry after Retry-After.",
                ErrorSerializer,
                headers={"Retry-After": {"type": "integer", "description": "Seconds to wait before trying again."}},
            ),
        },
    )
    def post(self, request):
        data = booking_create_input(request.data)
        booking, _ = booking_submit(
            user_id=request.user.pk,
            show_id=data["show"],
            seats=data.get("seats"),
            quantity=data.get("quantity"),
            idempotency_key=_idempotency_key(request),
            tickets=data.get("tickets"),
            seat_category=data.get("seat_category"),
            accessible=data.get("accessible", False),
        )
        response = _booking_response(booking, http_status=status.HTTP_202_ACCEPTED)
        response["Location"] = f"/api/v1/bookings/{booking.pk}"
        return response

    @swagger_auto_schema(
        operation_id="bookings_list",
        tags=TAGS,
        query_serializer=BookingListQuerySerializer,
        manual_parameters=PAGE_PARAMS,
        responses={200: paginated(BookingOutputSerializer), **errors(400, 401)},
    )
    def get(self, request):
        params = valid_query(BookingListQuerySerializer, request)
        bookings = selectors.booking_list(
            user=request.user, status=params.get("status"), reference=params.get("reference")
        )
        return _booking_page(request, self, bookings)


class BookingDetailApi(BaseApi):
    @swagger_auto_schema(
        operation_id="bookings_read",
        tags=TAGS,
        responses={
            200: openapi.Response("The booking.", BookingOutputSerializer, headers=RETRY_AFTER),
            **errors(401, 404),
        },
    )
    def get(self, request, booking_id):
        return _booking_response(selectors.booking_get(booking_id=booking_id, user=request.user))

    @swagger_auto_schema(
        operation_id="bookings_cancel",
        tags=TAGS,
        responses={200: BookingOutputSerializer, **errors(401, 404, 409)},
    )
    def delete(self, request, booking_id):
        return _booking_response(booking_cancel(booking_id=booking_id, user=request.user))


class BookingConfirmApi(BaseApi):
    @swagger_auto_schema(
        operation_id="bookings_confirm",
        operation_description="Take a waiting-list offer (`offer: true`, `held`) of a show without payment: "
        "`confirmed`, its seats yours (again: 200, unchanged). 409 `hold_expired` after `hold_expires_at`, "
        "`not_an_offer`, `payment_required` (a paying show's offer is confirmed by paying it), "
        "`booking_cancelled`, `show_started`.",
        tags=TAGS,
        request_body=no_body,
        responses={200: BookingOutputSerializer, **errors(401, 404, 409)},
    )
    def post(self, request, booking_id):
        return _booking_response(booking_confirm_offer(booking_id=booking_id, user=request.user))


class UserBookingListApi(BaseApi):
    @swagger_auto_schema(
        operation_id="users_bookings",
        tags=TAGS,
        query_serializer=BookingListQuerySerializer,
        manual_parameters=PAGE_PARAMS,
        responses={200: paginated(BookingOutputSerializer), **errors(400, 401, 404)},
    )
    def get(self, request, user_id: int):
        params = valid_query(BookingListQuerySerializer, request)
        bookings = selectors.booking_list(
            user=request.user, owner_id=user_id, status=params.get("status"), reference=params.get("reference")
        )
        return _booking_page(request, self, bookings)


def _booking_page(request, view, bookings) -> Response:
    """A page of bookings, the pending ones with their queue positions."""
    return paginated_response(
        request=request,
        view=view,
        queryset=bookings,
        serializer_class=BookingOutputSerializer,
        prepare=_set_queue_positions,
    )
