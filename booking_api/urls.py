"""Root URLs. Every API route answers with and without a trailing slash, for every method
(no redirect, so a POST or DELETE is never turned into a GET)."""

from django.contrib import admin
from django.urls import include, path, re_path, register_converter
from drf_yasg.views import get_schema_view
from rest_framework.permissions import AllowAny

from booking_api import admin_login
from booking_api.metrics import metrics_view
from booking_api.openapi import API_INFO, SchemaGenerator
from booking_api.views import auth, bookings, catalogue, ops, page, payments, tickets, waitlist
from core.admin import box_office


class IdConverter:
    # At most 18 digits: every such id fits PostgreSQL's bigint, so a huge id is a 404
    # rather than an out-of-range database error.
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(value)


register_converter(IdConverter, "id")


def route(pattern: str, view, name: str) -> list:
    return [path(pattern, view, name=name), path(f"{pattern}/", view)]


api_v1 = [
    *route("auth/signup", auth.UserSignupApi.as_view(), "auth-signup"),
    *route("auth/login", auth.UserLoginApi.as_view(), "auth-login"),
    *route("auth/refresh", auth.TokenRefreshApi.as_view(), "auth-refresh"),
    *route("auth/logout", auth.UserLogoutApi.as_view(), "auth-logout"),
    *route("auth/me", auth.UserMeApi.as_view(), "auth-me"),
    *route("movies", catalogue.MovieListCreateApi.as_view(), "movie-list"),
    *route("movies/<id:movie_id>", catalogue.MovieDetailApi.as_view(), "movie-detail"),
    *route("movies/<id:movie_id>/shows", catalogue.MovieShowListApi.as_view(), "movie-shows"),
    *route("shows", catalogue.ShowListCreateApi.as_view(), "show-list"),
    *route("shows/<id:show_id>", catalogue.ShowDetailApi.as_view(), "show-detail"),
    *route("shows/<id:show_id>/seats", catalogue.ShowSeatMapApi.as_view(), "show-seats"),
    *route("screens", catalogue.ScreenListCreateApi.as_view(), "screen-list"),
    *route("screens/<id:screen_id>", catalogue.ScreenDetailApi.as_view(), "screen-detail"),
    *route("bookings", bookings.BookingListCreateApi.as_view(), "booking-list"),
    *route("bookings/<uuid:booking_id>", bookings.BookingDetailApi.as_view(), "booking-detail"),
    *route("bookings/<uuid:booking_id>/pay", payments.BookingPayApi.as_view(), "booking-pay"),
    *route("payments/webhook", payments.PaymentWebhookApi.as_view(), "payment-webhook"),
    *route("bookings/<uuid:booking_id>/tickets", tickets.BookingTicketListApi.as_view(), "booking-tickets"),
    *route("users/<id:user_id>/bookings", bookings.UserBookingListApi.as_view(), "user-bookings"),
    *route("tickets/<str:code>/qr.png", tickets.TicketQrApi.as_view(), "ticket-qr"),
    *route("checkins", tickets.CheckinCreateApi.as_view(), "checkin-list"),
    *route("bookings/<uuid:booking_id>/confirm", bookings.BookingConfirmApi.as_view(), "booking-confirm"),
    *route("users/<id:user_id>/bookings", bookings.UserBookingListApi.as_view(), "user-bookings"),
    *route("shows/<id:show_id>/waitlist", waitlist.ShowWaitlistJoinApi.as_view(), "show-waitlist"),
    *route("waitlist", waitlist.WaitlistListApi.as_view(), "waitlist-list"),
    *route("waitlist/<id:entry_id>", waitlist.WaitlistDetailApi.as_view(), "waitlist-detail"),
]

schema_view = get_schema_view(
    API_INFO,
    public=True,
    permission_classes=[AllowAny],
    authentication_classes=[],
    generator_class=SchemaGenerator,
    patterns=[path("api/v1/", include(api_v1))],
)

urlpatterns = [
    # The customer booking page: a static app on the public API (booking_api/views/page.py).
    path("", page.booking_page, name="booking-page"),
    path("api/v1/", include(api_v1)),
    path("swagger.json", schema_view.without_ui(cache_timeout=0), {"format": ".json"}, name="schema-json"),
    path("swagger.yaml", schema_view.without_ui(cache_timeout=0), {"format": ".yaml"}, name="schema-yaml"),
    path("swagger/", schema_view.with_ui("swagger", cache_timeout=0), name="swagger-ui"),
    path("redoc/", schema_view.with_ui("redoc", cache_timeout=0), name="redoc"),
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    # Before the admin's own routes: its login page, rate-limited like the API's login.
    path("admin/login/", admin_login.login),
    # The box-office dashboard, staff only through the admin site's login.
    path("admin/box-office/", admin.site.admin_view(box_office.page), name="box-office"),
    path("admin/box-office/panel/", admin.site.admin_view(box_office.panel), name="box-office-panel"),
    path("admin/", admin.site.urls),
    # Last: any other path is a JSON 404, also with DEBUG on (never Django's HTML page).
    re_path(r"^", ops.not_found),
]

handler400 = ops.bad_request
handler403 = ops.permission_denied
handler404 = ops.not_found
handler500 = ops.server_error
