"""The waiting list of sold-out shows (authenticated): join, list, leave."""

from drf_yasg import openapi
from drf_yasg.utils import swagger_auto_schema
from rest_framework import status
from rest_framework.response import Response

from booking_api.openapi import PAGE_PARAMS, errors, paginated
from booking_api.serializers.waitlist import WaitlistEntryOutputSerializer, WaitlistJoinInputSerializer
from booking_api.views.common import BaseApi, paginated_response
from core import selectors
from core.services.waitlist import waitlist_join, waitlist_leave

TAGS = ["waitlist"]

JOIN_DESCRIPTION = (
    "Join a sold-out show's waiting list for `quantity` standard seats. Seats freed later (a cancel, an "
    "expired hold) are offered first come, first served: the first entry that fits gets a held booking "
    "(`offer: true`) with its own deadline. Poll GET /waitlist (or GET /bookings?status=held) to see it; "
    "take it with POST /bookings/{id}/confirm (a show without payment) or by paying it. "
    "409 `seats_available` when enough seats are free (book instead), `already_waiting` when you are "
    "already on the list (details.id), `limit_exceeded` past the per-user seat limit."
)


class ShowWaitlistJoinApi(BaseApi):
    @swagger_auto_schema(
        operation_id="waitlist_join",
        operation_description=JOIN_DESCRIPTION,
        tags=TAGS,
        request_body=WaitlistJoinInputSerializer,
        responses={
            201: openapi.Response(
                "On the list, with its position.",
                WaitlistEntryOutputSerializer,
                headers={"Location": {"type": "string", "description": "URL of the entry."}},
            ),
            **errors(400, 401, 404, 409),
        },
    )
    def post(self, request, show_id):
        serializer = WaitlistJoinInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entry = waitlist_join(user_id=request.user.pk, show_id=show_id, quantity=serializer.validated_data["quantity"])
        response = Response(WaitlistEntryOutputSerializer(entry).data, status=status.HTTP_201_CREATED)
        response["Location"] = f"/api/v1/waitlist/{entry.pk}"
        return response


class WaitlistListApi(BaseApi):
    @swagger_auto_schema(
        operation_id="waitlist_list",
        operation_description="The caller's waiting-list entries, newest first, with positions and offers.",
        tags=TAGS,
        manual_parameters=PAGE_PARAMS,
        responses={200: paginated(WaitlistEntryOutputSerializer), **errors(401)},
    )
    def get(self, request):
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.waitlist_list(user_id=request.user.pk),
            serializer_class=WaitlistEntryOutputSerializer,
        )


class WaitlistDetailApi(BaseApi):
    @swagger_auto_schema(
        operation_id="waitlist_read",
        tags=TAGS,
        responses={200: WaitlistEntryOutputSerializer, **errors(401, 404)},
    )
    def get(self, request, entry_id):
        entry = selectors.waitlist_entry_get(entry_id=entry_id, user_id=request.user.pk)
        return Response(WaitlistEntryOutputSerializer(entry).data)

    @swagger_auto_schema(
        operation_id="waitlist_leave",
        operation_description="Leave the waiting list (a left or closed entry: 204 again). An entry that "
        "was offered seats is 409 `already_offered`: decline the offer by cancelling its booking.",
        tags=TAGS,
        responses={204: "Left the waiting list.", **errors(401, 404, 409)},
    )
    def delete(self, request, entry_id):
        waitlist_leave(user_id=request.user.pk, entry_id=entry_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
