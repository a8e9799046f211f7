from rest_framework.response import Response
from rest_framework.views import APIView

from booking_api.pagination import StandardPagination


def paginated_response(*, request, view, queryset, serializer_class) -> Response:
    paginator = StandardPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def valid_query(serializer_class, request) -> dict:
    """Validated query parameters (400 with field details when they are malformed)."""
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class BaseApi(APIView):
    """Base of every API view: a method the route does not have is a 405 before any
    authentication or permission check (DRF would answer 401/403 first)."""

    def initial(self, request, *args, **kwargs):
        if not hasattr(self, request.method.lower()):
            self.http_method_not_allowed(request, *args, **kwargs)
        super().initial(request, *args, **kwargs)
