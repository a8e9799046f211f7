"""Paying a held booking, and the payment provider's webhook."""

from drf_yasg import openapi
from drf_yasg.utils import swagger_auto_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from booking_api.openapi import errors
from booking_api.serializers.bookings import BookingOutputSerializer, BookingPayInputSerializer
from booking_api.serializers.errors import ErrorSerializer
from booking_api.throttles import WebhookThrottle
from booking_api.views.bookings import IDEMPOTENCY_HEADER, _booking_response, _idempotency_key
from booking_api.views.common import BaseApi
from core.payments.signing import HEADER as SIGNATURE_HEADER
from core.services.payments import booking_pay, payment_webhook_receive

PAY_DESCRIPTION = (
    "Pay a `held` booking (a show with `payment_required`) before its `hold_expires_at`. Send an "
    "`Idempotency-Key`: retries with it (after a timeout, a 503) are the same charge, never a second one. "
    "`200`: paid, the booking is `confirmed`. `202`: the provider is still deciding; poll the booking until it "
    "is `confirmed` (or, if the payment fails, still `held`: pay again with a new key). `402 payment_declined`: "
    "the booking stays held. `409`: `hold_expired`, `booking_pending` (poll until held), `booking_already_paid`, "
    "`booking_not_held`, `payment_in_progress` (another key's charge is being decided) or "
    "`idempotency_key_reused` (the key with another token)."
)


class BookingPayApi(BaseApi):
    @swagger_auto_schema(
        operation_id="bookings_pay",
        operation_description=PAY_DESCRIPTION,
        tags=["bookings"],
        request_body=BookingPayInputSerializer,
        manual_parameters=[IDEMPOTENCY_HEADER],
        responses={
            200: openapi.Response("Paid: the booking, confirmed.", BookingOutputSerializer),
            202: openapi.Response("The provider is still deciding: the booking, still held.", BookingOutputSerializer),
            402: openapi.Response("`payment_declined`: the booking is still held.", ErrorSerializer),
            **errors(400, 401, 404, 409, 503),
        },
    )
    def post(self, request, booking_id):
        serializer = BookingPayInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = booking_pay(
            booking_id=booking_id,
            user=request.user,
            token=serializer.validated_data["payment_token"],
            idempotency_key=_idempotency_key(request),
        )
        return _booking_response(
            result.booking, http_status=status.HTTP_202_ACCEPTED if result.processing else status.HTTP_200_OK
        )


class WebhookAckSerializer(serializers.Serializer):
    received = serializers.BooleanField()

    class Meta:
        ref_name = "WebhookAck"


class PaymentWebhookApi(BaseApi):
    """Called by the payment provider, not by users: no token, its own rate limit, and the
    body verified by the provider's signature (read raw: the signature is over the bytes)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [WebhookThrottle]

    @swagger_auto_schema(
        operation_id="payments_webhook",
        operation_description="The payment provider's asynchronous result of a charge, signed with "
        f"PAYMENT_WEBHOOK_SECRET in the `{SIGNATURE_HEADER}` header (`t=<unix time>,v1=<hex HMAC-SHA256 of "
        '"<t>.<body>">`). A bad or stale signature is a 400 and changes nothing; an event delivered twice has '
        "no second effect.",
        tags=["payments"],
        security=[],
        request_body=openapi.Schema(type=openapi.TYPE_OBJECT, description="The provider's event."),
        manual_parameters=[
            openapi.Parameter(
                SIGNATURE_HEADER,
                openapi.IN_HEADER,
                type=openapi.TYPE_STRING,
                required=True,
                description="The signature.",
            )
        ],
        responses={200: WebhookAckSerializer, **errors(400, 429, 503)},
    )
    def post(self, request):
        payment_webhook_receive(payload=request.body, headers=request.headers)
        return Response({"received": True})
