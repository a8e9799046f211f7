"""Catalogue routes: public reads, staff-only writes, pagination, filters, the seat map."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from core.models import BookedSeat, Booking, Movie, Show
from tests.factories import MovieFactory, ScreenFactory, ShowFactory

pytestmark = pytest.mark.django_db

MOVIE_FIELDS = {"id", "title", "description", "duration_minutes", "genre", "language", "rating", "release_date"}
SHOW_FIELDS = {"id", "movie", "screen", "starts_at", "ends_at", "price", "total_seats", "available_seats"}


def _hold(show, user, *labels):
    booking = Booking.objects.create(show=show, user=user, quantity=len(labels), status="confirmed", seats=list(labels))
    BookedSeat.objects.bulk_create(BookedSeat(show=show, booking=booking, seat_label=label) for label in labels)
    return booking


# ---- movies ----------------------------------------------------------------------------


def test_movies_are_public_and_paginated(api):
    MovieFactory.create_batch(25)
    MovieFactory(is_active=False)
    body = api.get("/api/v1/movies").json()
    assert body["count"] == 25
    assert len(body["results"]) == 20
    assert set(body["results"][0]) == MOVIE_FIELDS
    assert body["next"]
    assert body["previous"] is None
    assert len(api.get("/api/v1/movies?page=2").json()["results"]) == 5


def test_page_size_is_capped_at_100(api):
    MovieFactory.create_batch(105)
    assert len(api.get("/api/v1/movies?page_size=1000").json()["results"]) == 100
    assert len(api.get("/api/v1/movies?page_size=3").json()["results"]) == 3


def test_movie_filters_and_ordering(api):
    MovieFactory(title="The Big Heist", genre="Crime", language="English", duration_minutes=100)
    MovieFactory(title="Small Heist", genre="Crime", language="French", duration_minutes=90)
    MovieFactory(title="Love Story", genre="Romance", language="French", duration_minutes=110)

    def titles(query):
        return [m["title"] for m in api.get(f"/api/v1/movies?{query}").json()["results"]]

    assert titles("search=heist") == ["Small Heist", "The Big Heist"]
    assert titles("genre=crime&language=french") == ["Small Heist"]
    assert titles("ordering=-duration_minutes") == ["Love Story", "The Big Heist", "Small Heist"]
    assert api.get("/api/v1/movies?ordering=password").status_code == 400


def test_unknown_movie_is_404(api):
    response = api.get("/api/v1/movies/999999")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_movie_writes_need_staff(api, user_api, staff_api):
    payload = {"title": "New", "duration_minutes": 95, "genre": "Drama"}
    assert api.post("/api/v1/movies", payload).status_code == 401
    assert user_api.post("/api/v1/movies", payload).status_code == 403
    created = staff_api.post("/api/v1/movies", payload)
    assert created.status_code == 201
    movie_id = created.json()["id"]
    assert user_api.patch(f"/api/v1/movies/{movie_id}", {"title": "x"}).status_code == 403
    assert user_api.delete(f"/api/v1/movies/{movie_id}").status_code == 403
    patched = staff_api.patch(f"/api/v1/movies/{movie_id}", {"title": "Renamed"})
    assert patched.status_code == 200
    assert patched.json()["title"] == "Renamed"
    assert staff_api.delete(f"/api/v1/movies/{movie_id}").status_code == 204
    assert not Movie.objects.filter(pk=movie_id).exists()


def test_movie_validation(staff_api):
    response = staff_api.post("/api/v1/movies", {"title": "", "duration_minutes": 0})
    assert response.status_code == 400
    assert {"title", "duration_minutes"} <= set(response.json()["details"])


def test_a_movie_with_bookings_is_deactivated_not_deleted(api, staff_api, show, user):
    _hold(show, user, "A1")
    assert staff_api.delete(f"/api/v1/movies/{show.movie_id}").status_code == 204
    show.movie.refresh_from_db()
    assert show.movie.is_active is False
    assert api.get(f"/api/v1/movies/{show.movie_id}").status_code == 404


def test_changing_a_duration_moves_show_ends(staff_api, show):
    staff_api.patch(f"/api/v1/movies/{show.movie_id}", {"duration_minutes": 90})
    show.refresh_from_db()
    assert show.ends_at == show.starts_at + timedelta(minutes=90)


# ---- shows -----------------------------------------------------------------------------


def test_movie_shows_are_upcoming_soonest_first(api):
    movie, screen = MovieFactory(), ScreenFactory()
    now = timezone.now()
    later = ShowFactory(movie=movie, screen=screen, starts_at=now + timedelta(days=2))
    sooner = ShowFactory(movie=movie, screen=screen, starts_at=now + timedelta(days=1))
    ShowFactory(movie=movie, screen=screen, starts_at=now - timedelta(days=1))  # past
    ShowFactory(movie=movie, screen=screen, starts_at=now + timedelta(days=3), status="cancelled")
    body = api.get(f"/api/v1/movies/{movie.pk}/shows").json()
    assert [s["id"] for s in body["results"]] == [sooner.pk, later.pk]
    assert set(body["results"][0]) >= SHOW_FIELDS
    assert body["results"][0]["screen"] == {"id": screen.pk, "name": screen.name}


def test_movie_shows_filter_by_date(api):
    movie, screen = MovieFactory(), ScreenFactory()
    day = timezone.localdate() + timedelta(days=3)
    at = timezone.make_aware(datetime.combine(day, datetime.min.time())) + timedelta(hours=20)
    on_day = ShowFactory(movie=movie, screen=screen, starts_at=at)
    ShowFactory(movie=movie, screen=screen, starts_at=at + timedelta(days=1))
    body = api.get(f"/api/v1/movies/{movie.pk}/shows?date={day.isoformat()}").json()
    assert [s["id"] for s in body["results"]] == [on_day.pk]
    assert api.get(f"/api/v1/movies/{movie.pk}/shows?date=tomorrow").status_code == 400


def test_show_detail_has_availability(api, show, user):
    _hold(show, user, "A1", "A2")
    body = api.get(f"/api/v1/shows/{show.pk}").json()
    assert body["total_seats"] == 40
    assert body["available_seats"] == 38
    assert body["price"] == "12.50"
    assert body["starts_at"].endswith("Z") or "+" in body["starts_at"]


def test_show_writes_need_staff_and_refuse_overlaps(api, user_api, staff_api):
    movie, screen = MovieFactory(duration_minutes=100), ScreenFactory()
    starts = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    payload = {"movie": movie.pk, "screen": screen.pk, "starts_at": starts.isoformat(), "price": "10.00"}
    assert api.post("/api/v1/shows", payload).status_code == 401
    assert user_api.post("/api/v1/shows", payload).status_code == 403
    created = staff_api.post("/api/v1/shows", payload)
    assert created.status_code == 201
    assert created.json()["ends_at"] == (starts + timedelta(minutes=100)).isoformat().replace("+00:00", "Z")
    overlapping = staff_api.post(
        "/api/v1/shows", {**payload, "starts_at": (starts + timedelta(minutes=99)).isoformat()}
    )
    assert overlapping.status_code == 400
    assert "starts_at" in overlapping.json()["details"]
    after = staff_api.post("/api/v1/shows", {**payload, "starts_at": (starts + timedelta(minutes=100)).isoformat()})
    assert after.status_code == 201


def test_show_patch(staff_api, user_api, show):
    assert user_api.patch(f"/api/v1/shows/{show.pk}", {"price": "1.00"}).status_code == 403
    response = staff_api.patch(f"/api/v1/shows/{show.pk}", {"price": "15.00"})
    assert response.status_code == 200
    assert response.json()["price"] == "15.00"
    assert staff_api.patch(f"/api/v1/shows/{show.pk}", {"price": "-1"}).status_code == 400


def test_a_show_with_bookings_cannot_be_moved_but_can_be_cancelled(staff_api, show, user):
    booking = _hold(show, user, "A1")
    moved = staff_api.patch(
        f"/api/v1/shows/{show.pk}", {"starts_at": (show.starts_at + timedelta(hours=5)).isoformat()}
    )
    assert moved.status_code == 409
    cancelled = staff_api.patch(f"/api/v1/shows/{show.pk}", {"status": "cancelled"})
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    booking.refresh_from_db()
    assert booking.status == "cancelled"
    assert not BookedSeat.objects.filter(show=show).exists()


def test_shows_list_filters(api, show):
    other = ShowFactory()
    assert {s["id"] for s in api.get("/api/v1/shows").json()["results"]} == {show.pk, other.pk}
    assert [s["id"] for s in api.get(f"/api/v1/shows?movie={show.movie_id}").json()["results"]] == [show.pk]
    assert api.get("/api/v1/shows?movie=abc").status_code == 400


# ---- seat map and screens ----------------------------------------------------------------


def test_seat_map(api, show, user, django_assert_max_num_queries):
    _hold(show, user, "B3")
    with django_assert_max_num_queries(2):
        response = api.get(f"/api/v1/shows/{show.pk}/seats")
    body = response.json()
    assert body["show"] == show.pk
    assert body["total"] == 40
    assert body["available"] == 39
    assert body["seats"][0] == {"label": "A1", "row": "A", "number": 1, "available": True, "category": "standard"}
    assert [s["label"] for s in body["seats"] if not s["available"]] == ["B3"]
    assert body["seats"][-1]["label"] == "E8"


def test_seat_map_of_unknown_show_is_404(api):
    assert api.get("/api/v1/shows/987654/seats").status_code == 404


def test_screens(api, user_api, staff_api):
    payload = {"name": "Hall 9", "rows": 10, "seats_per_row": 12}
    assert api.post("/api/v1/screens", payload).status_code == 401
    assert user_api.post("/api/v1/screens", payload).status_code == 403
    created = staff_api.post("/api/v1/screens", payload)
    assert created.status_code == 201
    assert created.json()["total_seats"] == 120
    assert staff_api.post("/api/v1/screens", payload).status_code == 400  # name taken
    assert staff_api.post("/api/v1/screens", {"name": "Z", "rows": 27, "seats_per_row": 1}).status_code == 400
    assert api.get(f"/api/v1/screens/{created.json()['id']}").json()["name"] == "Hall 9"
    assert api.get("/api/v1/screens").json()["count"] == 1


def test_show_count_query_is_bounded(api, django_assert_max_num_queries):
    movie = MovieFactory()
    for day in range(1, 15):
        ShowFactory(movie=movie, starts_at=timezone.now() + timedelta(days=day))
    with django_assert_max_num_queries(3):
        assert api.get(f"/api/v1/movies/{movie.pk}/shows").status_code == 200
    assert Show.objects.count() == 14


def test_a_response_is_freed_when_the_request_ends(show):
    """The view drops its reference to the response, so a large body (a seat map) is freed
    by reference counting at once rather than left to the cyclic garbage collector."""
    import gc
    import weakref

    from rest_framework.test import APIRequestFactory

    from booking_api.views.catalogue import ShowSeatMapApi

    view = ShowSeatMapApi.as_view()
    gc.collect()
    gc.disable()
    try:
        response = view(APIRequestFactory().get(f"/api/v1/shows/{show.pk}/seats"), show_id=show.pk).render()
        assert response.status_code == 200
        freed = weakref.ref(response)
        del response
        assert freed() is None
    finally:
        gc.enable()
