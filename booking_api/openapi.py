"""OpenAPI (Swagger 2.0) helpers for drf-yasg: API info, shared responses, paginated lists,
and the rules that make the published schema say exactly what the server sends and accepts
(client generators trust it: tests/test_generated_client.py, tests/openapi_check.py)."""

import copy

from drf_yasg import openapi
from drf_yasg.generators import OpenAPISchemaGenerator
from drf_yasg.inspectors import FieldInspector, SwaggerAutoSchema
from rest_framework import serializers
from rest_framework_simplejwt.authentication import JWTAuthentication

from booking_api.serializers.errors import ErrorSerializer

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
        415: "Body is not JSON (Content-Type application/json)",
        429: "Rate limit exceeded (see Retry-After)",
        503: "PostgreSQL or Redis unavailable (`service_unavailable`), the database busy (`busy`), or more "
        "requests than the service can serve (`overloaded`); see Retry-After",
    }
    return {code: openapi.Response(text[code], ErrorSerializer, headers=_ERROR_HEADERS.get(code)) for code in codes}


_RETRY_AFTER = {"Retry-After": {"type": "integer", "description": "Seconds to wait before trying again."}}
_ERROR_HEADERS = {
    401: {"WWW-Authenticate": {"type": "string", "description": "The authentication scheme expected (Bearer)."}},
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}


PAGE_PARAMS = [
    openapi.Parameter("page", openapi.IN_QUERY, type=openapi.TYPE_INTEGER, description="Page number (1-based)."),
    openapi.Parameter(
        "page_size", openapi.IN_QUERY, type=openapi.TYPE_INTEGER, description="Items per page (max 100)."
    ),
]


def query(name: str, description: str, type_: str = openapi.TYPE_STRING, **kwargs) -> openapi.Parameter:
    return openapi.Parameter(name, openapi.IN_QUERY, type=type_, description=description, **kwargs)


class DocumentedSchemaInspector(FieldInspector):
    """Applies a serializer's `documented_schema` ({field name: schema keys}) over what
    drf-yasg derived for those fields: limits that a service enforces after the serializer,
    published so that a client knows them before it is refused."""

    def process_result(self, result, method_name, obj, **kwargs):
        documented = getattr(getattr(obj, "parent", None), "documented_schema", None) or {}
        overrides = documented.get(getattr(obj, "field_name", None))
        if overrides and isinstance(result, (openapi.Schema, openapi.Parameter)):
            result.update(overrides)
        return result


class BookingAutoSchema(SwaggerAutoSchema):
    """Adds to each operation the error responses that any operation of its kind can give,
    so that the schema lists every status the API answers with (and its error shape)."""

    def get_response_serializers(self):
        responses = super().get_response_serializers()
        codes = [414, 429, 503]  # URL over the server's limit; throttled; PostgreSQL or Redis down
        if any(isinstance(auth, JWTAuthentication) for auth in self.view.get_authenticators()):
            codes.append(401)  # a bad token is refused even where none is needed
        if self.method in ("POST", "PUT", "PATCH"):
            codes += [413, 415]  # DJANGO_MAX_BODY_BYTES; a body that is not JSON
        if any(param.name == "page" for param in self.overrides.get("manual_parameters") or []):
            codes.append(404)  # ?page= past the last page, or not a page number
        for code, response in errors(*codes).items():
            responses.setdefault(str(code), response)
        return responses

    field_inspectors = [DocumentedSchemaInspector, *SwaggerAutoSchema.field_inspectors]

    def get_request_body_schema(self, serializer):
        """A PATCH body is its input schema with no field required, as its own definition
        (Patched<Name>): a generated client can then send just the fields that change."""
        schema = super().get_request_body_schema(serializer)
        if self.method != "PATCH" or not isinstance(schema, openapi.SchemaRef):
            return schema
        definitions = self.components.with_scope(openapi.SCHEMA_DEFINITIONS)
        name = schema["$ref"].rsplit("/", 1)[-1]

        def patched():
            full = copy.deepcopy(schema.resolve(definitions))
            full.pop("required", None)
            return full

        definitions.setdefault(f"Patched{name}", patched)
        return openapi.SchemaRef(definitions, f"Patched{name}")

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
                elif param.name == "code":
                    param.type = openapi.TYPE_STRING  # a ticket code (tickets_qr)
                else:
                    # urls.IdConverter: 1 to 18 digits, so that every id fits a bigint.
                    param.type, param.format, param.minimum = openapi.TYPE_INTEGER, "int64", 0
        _prune_definitions(schema)
        _require_output_fields(schema)
        for node in schema_nodes(schema):
            _allow_null_in_enum(node)
            _int64_without_unsafe_bounds(node)
        return schema


# Larger integers lose precision in JavaScript (and in JSON tools that parse numbers as doubles).
MAX_SAFE_INTEGER = 2**53 - 1


def schema_nodes(node):
    """Every object (dict) of a schema document, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from schema_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from schema_nodes(value)


def _refs(node) -> set[str]:
    """Names of the definitions that `node` refers to directly."""
    prefix = "#/definitions/"
    return {n["$ref"][len(prefix) :] for n in schema_nodes(node) if str(n.get("$ref", "")).startswith(prefix)}


def _closure(names: set[str], definitions) -> set[str]:
    seen, todo = set(), set(names)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo |= _refs(definitions[name])
    return seen


def _operations(schema):
    for path_item in schema.paths.values():
        for method, operation in path_item.items():
            if method in {"get", "put", "post", "delete", "options", "head", "patch"}:
                yield operation


def _response_and_request_definitions(schema) -> tuple[set[str], set[str]]:
    definitions = schema.get("definitions") or {}
    responses, requests = set(), set()
    for operation in _operations(schema):
        responses |= _refs(operation.get("responses"))
        requests |= _refs(operation.get("parameters"))
    return _closure(responses, definitions), _closure(requests, definitions)


def _prune_definitions(schema) -> None:
    """Drop definitions no operation uses (the full form of a body documented as Patched<Name>)."""
    definitions = schema.get("definitions") or {}
    used = set().union(*_response_and_request_definitions(schema))
    for name in [name for name in definitions if name not in used]:
        del definitions[name]


def _require_output_fields(schema) -> None:
    """A serializer renders every one of its fields (None when empty), so every property of
    a schema that only responses use is required: a generated type then has no `Unset`."""
    definitions = schema.get("definitions") or {}
    responses, requests = _response_and_request_definitions(schema)
    for name in responses - requests:
        properties = definitions[name].get("properties")
        if properties:
            definitions[name]["required"] = list(properties)


def _allow_null_in_enum(node: dict) -> None:
    """`x-nullable` (OpenAPI 3.0: `nullable`) does not widen an `enum`: a null value must be
    one of the enum's values, or strict validators and generated clients refuse it."""
    if node.get("x-nullable") and isinstance(node.get("enum"), list) and None not in node["enum"]:
        node["enum"] = [*node["enum"], None]


def _int64_without_unsafe_bounds(node: dict) -> None:
    """A bound beyond 2^53 is rounded by JavaScript tooling (2^63 - 1 becomes 2^63): such an
    integer is published as `format: int64` instead, without that bound."""
    if node.get("type") != openapi.TYPE_INTEGER:
        return
    for key in ("minimum", "maximum"):
        if key in node and abs(node[key]) > MAX_SAFE_INTEGER:
            del node[key]
            node["format"] = "int64"
