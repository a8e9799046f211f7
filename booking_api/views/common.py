from rest_framework.response import Response
from rest_framework.views import APIView

from booking_api.pagination import StandardPagination


def paginated_response(*, request, view, queryset, serializer_class, prepare=None) -> Response:
    """One page of `queryset`; `prepare(page)` completes the page's rows in one go before
    they are rendered (what a row needs beyond its columns, without a query per row)."""
    paginator = StandardPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    if prepare is not None:
        prepare(page)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def valid_query(serializer_class, request) -> dict:
    """Validated query parameters (400 with field details when they are malformed)."""
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _release_render_context(response: Response) -> None:
    """Break the reference cycles DRF leaves around a response once it is rendered.

    The view keeps the response, and the response's render context keeps the view, the
    request and the response itself: every response, with its data, then waits for the
    cyclic garbage collector, whose full runs are rare, and a large seat map is megabytes of
    objects, so dozens of them pile up in a busy worker. Without the cycles the response is
    freed as soon as the server is done with it.
    """
    response.renderer_context = None


class BaseApi(APIView):
    """Base of every API view: a method the route does not have is a 405 before any
    authentication or permission check (DRF would answer 401/403 first)."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response):
            response.add_post_render_callback(_release_render_context)
        return response

    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        self.response = None  # see _release_render_context
        return response

    def initial(self, request, *args, **kwargs):
        if not hasattr(self, request.method.lower()):
            self.http_method_not_allowed(request, *args, **kwargs)
        super().initial(request, *args, **kwargs)
