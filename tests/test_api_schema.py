"""The rules that make /swagger.json trustworthy for client generators (booking_api/openapi.py),
checked on the published document itself. test_generated_client.py and the response check of
every API test (tests/openapi_check.py) show the same from the clients' side."""

import re

import pytest
from django.conf import settings

from booking_api.openapi import schema_nodes

MAX_SAFE_INTEGER = 2**53 - 1
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def spec():
    from tests.openapi_check import published_swagger

    return published_swagger()


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def definition(spec, ref: str) -> dict:
    return spec["definitions"][ref.rsplit("/", 1)[-1]]


def test_every_field_of_a_response_schema_is_required(spec):
    names = ["BookingOutput", "MovieOutput", "ShowOutput", "ScreenOutput", "ScreenRef", "SeatMapOutput", "Seat"]
    for name in names:
        schema = spec["definitions"][name]
        assert set(schema["required"]) == set(schema["properties"]), name
    booking = spec["definitions"]["BookingOutput"]["properties"]
    assert booking["failure_reason"]["x-nullable"] is True
    assert booking["decided_at"]["x-nullable"] is True
    assert "x-nullable" not in booking["status"]


def test_a_nullable_enum_lists_null(spec):
    nullable_enums = [node for node in schema_nodes(spec) if node.get("x-nullable") and "enum" in node]
    assert nullable_enums, "failure_reason at least"
    for node in nullable_enums:
        assert None in node["enum"], node


def test_patch_bodies_require_nothing(spec):
    for path in ("/movies/{movie_id}", "/shows/{show_id}"):
        body = next(p for p in spec["paths"][path]["patch"]["parameters"] if p["in"] == "body")
        assert body["required"] is False
        schema = definition(spec, body["schema"]["$ref"])
        assert "required" not in schema, path
        assert body["schema"]["$ref"].startswith("#/definitions/Patched")
    show_patch = definition(spec, spec["paths"]["/shows/{show_id}"]["patch"]["parameters"][0]["schema"]["$ref"])
    assert show_patch["properties"]["status"]["enum"] == ["scheduled", "cancelled"]
    # Every definition is used by some operation (the full ShowUpdateInput is not).
    assert "ShowUpdateInput" not in spec["definitions"]


def test_booking_limits_are_the_servers(spec):
    body = spec["definitions"]["BookingCreateInput"]["properties"]
    limit = settings.BOOKING_MAX_SEATS
    assert (body["quantity"]["minimum"], body["quantity"]["maximum"]) == (1, limit)
    assert (body["seats"]["minItems"], body["seats"]["maxItems"]) == (1, limit)
    key = next(p for p in spec["paths"]["/bookings"]["post"]["parameters"] if p["name"] == "Idempotency-Key")
    assert (key["minLength"], key["maxLength"]) == (1, 255)
    pattern = re.compile(key["pattern"])
    for good in ("k", "3fa85f64-5717-4562-b3fc-2c963f66afa6", "a b", "x" * 255):
        assert pattern.match(good), good
    for bad in (" k", "k ", "k\tk", "é", "x" * 256):
        assert not pattern.match(bad), bad


def test_no_integer_bound_beyond_what_javascript_represents(spec):
    integers = [node for node in schema_nodes(spec) if node.get("type") == "integer"]
    for node in integers:
        for key in ("minimum", "maximum"):
            assert abs(node.get(key, 0)) <= MAX_SAFE_INTEGER, node
    assert spec["definitions"]["BookingCreateInput"]["properties"]["show"]["format"] == "int64"
    movie_id = spec["paths"]["/movies/{movie_id}"]["parameters"][0]
    assert (movie_id["type"], movie_id["format"], movie_id["minimum"]) == ("integer", "int64", 0)


def test_throttled_and_unavailable_answers_declare_retry_after(spec):
    for path, method, operation in operations(spec):
        for status in ("429", "503"):
            assert "Retry-After" in operation["responses"][status]["headers"], (path, method, status)
        if method in ("post", "patch"):
            assert "415" in operation["responses"], (path, method)
