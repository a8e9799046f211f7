"""Movies, screens and shows: public reads, staff-only writes."""

from drf_yasg.utils import swagger_auto_schema
from rest_framework import status
from rest_framework.response import Response

from booking_api.openapi import PAGE_PARAMS, errors, paginated
from booking_api.permissions import IsStaffOrReadOnly
from booking_api.serializers.catalogue import (
    MovieInputSerializer,
    MovieListQuerySerializer,
    MovieOutputSerializer,
    ScreenInputSerializer,
    ScreenOutputSerializer,
    SeatMapOutputSerializer,
    ShowInputSerializer,
    ShowListFilterSerializer,
    ShowListQuerySerializer,
    ShowOutputSerializer,
    ShowUpdateInputSerializer,
)
from booking_api.views.common import BaseApi, paginated_response, valid_query
from core import selectors
from core.models import Movie
from core.services import catalogue

MOVIES, SHOWS, SCREENS = ["movies"], ["shows"], ["screens"]
PUBLIC = []  # no security requirement in the schema: reads need no token


def _movie(request, movie_id: int) -> Movie:
    return selectors.movie_get(movie_id=movie_id, include_inactive=request.user.is_staff)


class _CatalogueApi(BaseApi):
    permission_classes = [IsStaffOrReadOnly]


class MovieListCreateApi(_CatalogueApi):
    @swagger_auto_schema(
        operation_id="movies_list",
        tags=MOVIES,
        security=PUBLIC,
        query_serializer=MovieListQuerySerializer,
        manual_parameters=PAGE_PARAMS,
        responses={200: paginated(MovieOutputSerializer), **errors(400)},
    )
    def get(self, request):
        params = valid_query(MovieListQuerySerializer, request)
        movies = selectors.movie_list(**params, include_inactive=request.user.is_staff)
        return paginated_response(request=request, view=self, queryset=movies, serializer_class=MovieOutputSerializer)

    @swagger_auto_schema(
        operation_id="movies_create",
        tags=MOVIES,
        request_body=MovieInputSerializer,
        responses={201: MovieOutputSerializer, **errors(400, 401, 403)},
    )
    def post(self, request):
        serializer = MovieInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        movie = catalogue.movie_create(**serializer.validated_data)
        return Response(MovieOutputSerializer(movie).data, status=status.HTTP_201_CREATED)


class MovieDetailApi(_CatalogueApi):
    @swagger_auto_schema(
        operation_id="movies_read", tags=MOVIES, security=PUBLIC, responses={200: MovieOutputSerializer, **errors(404)}
    )
    def get(self, request, movie_id: int):
        return Response(MovieOutputSerializer(_movie(request, movie_id)).data)

    @swagger_auto_schema(
        operation_id="movies_update",
        tags=MOVIES,
        request_body=MovieInputSerializer(partial=True),
        responses={200: MovieOutputSerializer, **errors(400, 401, 403, 404)},
    )
    def patch(self, request, movie_id: int):
        movie = _movie(request, movie_id)
        serializer = MovieInputSerializer(movie, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        movie = catalogue.movie_update(movie=movie, **serializer.validated_data)
        return Response(MovieOutputSerializer(movie).data)

    @swagger_auto_schema(
        operation_id="movies_delete",
        tags=MOVIES,
        responses={204: "Deleted (or deactivated when it has bookings).", **errors(401, 403, 404)},
    )
    def delete(self, request, movie_id: int):
        catalogue.movie_delete(movie=_movie(request, movie_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MovieShowListApi(BaseApi):
    permission_classes = []

    @swagger_auto_schema(
        operation_id="movies_shows",
        tags=MOVIES,
        security=PUBLIC,
        query_serializer=ShowListQuerySerializer,
        manual_parameters=PAGE_PARAMS,
        responses={200: paginated(ShowOutputSerializer), **errors(400, 404)},
    )
    def get(self, request, movie_id: int):
        params = valid_query(ShowListQuerySerializer, request)
        movie = _movie(request, movie_id)
        shows = selectors.show_list(movie_id=movie.pk, day=params.get("date"))
        return paginated_response(request=request, view=self, queryset=shows, serializer_class=ShowOutputSerializer)


class ShowListCreateApi(_CatalogueApi):
    @swagger_auto_schema(
        operation_id="shows_list",
        tags=SHOWS,
        security=PUBLIC,
        query_serializer=ShowListFilterSerializer,
        manual_parameters=PAGE_PARAMS,
        responses={200: paginated(ShowOutputSerializer), **errors(400)},
    )
    def get(self, request):
        params = valid_query(ShowListFilterSerializer, request)
        shows = selectors.show_list(
            movie_id=params.get("movie"), screen_id=params.get("screen"), day=params.get("date")
        )
        return paginated_response(request=request, view=self, queryset=shows, serializer_class=ShowOutputSerializer)

    @swagger_auto_schema(
        operation_id="shows_create",
        tags=SHOWS,
        request_body=ShowInputSerializer,
        responses={201: ShowOutputSerializer, **errors(400, 401, 403)},
    )
    def post(self, request):
        serializer = ShowInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        show = catalogue.show_create(**serializer.validated_data)
        return Response(ShowOutputSerializer(selectors.show_get(show_id=show.pk)).data, status=status.HTTP_201_CREATED)


class ShowDetailApi(_CatalogueApi):
    @swagger_auto_schema(
        operation_id="shows_read", tags=SHOWS, security=PUBLIC, responses={200: ShowOutputSerializer, **errors(404)}
    )
    def get(self, request, show_id: int):
        return Response(ShowOutputSerializer(selectors.show_get(show_id=show_id)).data)

    @swagger_auto_schema(
        operation_id="shows_update",
        tags=SHOWS,
        request_body=ShowUpdateInputSerializer(partial=True),
        responses={200: ShowOutputSerializer, **errors(400, 401, 403, 404, 409)},
    )
    def patch(self, request, show_id: int):
        show = selectors.show_get(show_id=show_id)
        serializer = ShowUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        catalogue.show_update(show=show, **serializer.validated_data)
        return Response(ShowOutputSerializer(selectors.show_get(show_id=show_id)).data)


class ShowSeatMapApi(BaseApi):
    permission_classes = []

    @swagger_auto_schema(
        operation_id="shows_seats", tags=SHOWS, security=PUBLIC, responses={200: SeatMapOutputSerializer, **errors(404)}
    )
    def get(self, request, show_id: int):
        return Response(selectors.show_seat_map(show_id=show_id))


class ScreenListCreateApi(_CatalogueApi):
    @swagger_auto_schema(
        operation_id="screens_list",
        tags=SCREENS,
        security=PUBLIC,
        manual_parameters=PAGE_PARAMS,
        responses={200: paginated(ScreenOutputSerializer)},
    )
    def get(self, request):
        return paginated_response(
            request=request, view=self, queryset=selectors.screen_list(), serializer_class=ScreenOutputSerializer
        )

    @swagger_auto_schema(
        operation_id="screens_create",
        tags=SCREENS,
        request_body=ScreenInputSerializer,
        responses={201: ScreenOutputSerializer, **errors(400, 401, 403)},
    )
    def post(self, request):
        serializer = ScreenInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        screen = catalogue.screen_create(**serializer.validated_data)
        return Response(ScreenOutputSerializer(screen).data, status=status.HTTP_201_CREATED)


class ScreenDetailApi(BaseApi):
    permission_classes = []

    @swagger_auto_schema(
        operation_id="screens_read",
        tags=SCREENS,
        security=PUBLIC,
        responses={200: ScreenOutputSerializer, **errors(404)},
    )
    def get(self, request, screen_id: int):
        return Response(ScreenOutputSerializer(selectors.screen_get(screen_id=screen_id)).data)
