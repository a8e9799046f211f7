"""OpenAPI (Swagger 2.0) helpers for drf-yasg: API info, shared responses, paginated lists."""

from drf_yasg import openapi
from drf_yasg.generators import OpenAPISchemaGenerator
from drf_yasg.inspectors import SwaggerAutoSchema
from rest_framework import serializers
from rest_framework_simplejwt.authentication import JWTAuthentication

from booking_api.serializers import ErrorSerializer

API_INFO = openapi.Info(
    title="Movie ticket booking API",
    default_version="v1",
    description=(
        "Browse movies and shows, book seats and poll the result.\n\n"
        "Authenticate with POST /api/v1/auth/login, then click **Authorize** and enter "
        "`Bearer <access token>`. A booking is accepted with 202 and decided by a worker: "
        "poll GET /api/v1/bookings/{id}, honouring Retry-After, until its status is final."
    ),
    license=openapi.License(name="MIT"),
)

_paginated_cache: dict[type, type] = {}


def paginated(item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """A serializer class documenting {"count", "next", "previous", "results": [item]}."""
    if item not in _paginated_cache:
        name = f"Paginated{item.__name__.removesuffix('Serializer').removesuffix('Output')}List"
        _paginated_cache[item] = type(
            name,
            (serializers.Serializer,),
            {
                "count": serializers.IntegerField(),
                "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True),
                "results": item(many=True),
            },
        )
    return _paginated_cache[item]


def errors(*codes: int) -> dict:
    """drf-yasg `responses` entries for error statuses, all with the one error shape."""
    text = {
        400: "Invalid request (field details in `details`)",
        401: "Missing, expired or invalid token",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict with the current state",
        413: "Body too large",
        414: "Request line (URL) too long",
        429: "Rate limit exceeded (see Retry-After)",
        503: "PostgreSQL or Redis unavailable, or the database busy (`busy`); see Retry-After",
    }
    return {code: openapi.Response(text[code], ErrorSerializer) for code in codes}


PAGE_PARAMS = [
    openapi.Parameter("page", openapi.IN_QUERY, type=openapi.TYPE_INTEGER, description="Page number (1-based)."),
    openapi.Parameter(
        "page_size", openapi.IN_QUERY, type=openapi.TYPE_INTEGER, description="Items per page (max 100)."
    ),
]


def query(name: str, description: str, type_: str = openapi.TYPE_STRING, **kwargs) -> openapi.Parameter:
    return openapi.Parameter(name, openapi.IN_QUERY, type=type_, description=description, **kwargs)


class BookingAutoSchema(SwaggerAutoSchema):
    """Adds to each operation the error responses that any operation of its kind can give,
    so that the schema lists every status the API answers with (and its error shape)."""

    def get_response_serializers(self):
        responses = super().get_response_serializers()
        codes = [414, 429, 503]  # URL over the server's limit; throttled; PostgreSQL or Redis down
        if any(isinstance(auth, JWTAuthentication) for auth in self.view.get_authenticators()):
            codes.append(401)  # a bad token is refused even where none is needed
        if self.method in ("POST", "PUT", "PATCH"):
            codes.append(413)  # DJANGO_MAX_BODY_BYTES
        if any(param.name == "page" for param in self.overrides.get("manual_parameters") or []):
            codes.append(404)  # ?page= past the last page, or not a page number
        for code, response in errors(*codes).items():
            responses.setdefault(str(code), response)
        return responses

    def get_request_body_parameters(self, consumes):
        parameters = super().get_request_body_parameters(consumes)
        if self.method == "PATCH":
            for parameter in parameters:
                parameter.required = False  # a partial update may leave everything as it is
        return parameters


class SchemaGenerator(OpenAPISchemaGenerator):
    """Lists each route once: every route is also served with a trailing slash (see urls.py),
    and that twin is the same operation, so it is left out of the schema. Path parameters get
    the types their URL converters accept."""

    def get_endpoints(self, request):
        endpoints = super().get_endpoints(request)
        return {
            path: spec
            for path, spec in endpoints.items()
            if not path.endswith("/") or path.rstrip("/") not in endpoints
        }

    def get_schema(self, request=None, public=False):
        schema = super().get_schema(request, public)
        for path_item in schema.paths.values():
            for param in path_item.get("parameters") or []:
                if param.in_ != openapi.IN_PATH:
                    continue
                if param.name == "booking_id":
                    param.format = openapi.FORMAT_UUID
                else:
                    # urls.IdConverter: 1 to 18 digits, so that every id fits a bigint.
                    param.type, param.minimum, param.maximum = openapi.TYPE_INTEGER, 0, 10**18 - 1
        return schema
