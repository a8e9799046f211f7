"""The schema check that conftest applies to every API response refuses what the published
schema does not document (so that passing API tests mean something), and accepts what the
server sends: a pending booking with `failure_reason: null`, the issue client generators hit."""

import json

import pytest

from tests import openapi_check

pytestmark = pytest.mark.skipif(
    openapi_check.node_missing_reason() is not None, reason=openapi_check.node_missing_reason() or ""
)

BOOKING_PATH = "/api/v1/bookings/3fa85f64-5717-4562-b3fc-2c963f66afa6"
PENDING = {
    "id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "status": "pending",
    "show": 1,
    "seats": [],
    "quantity": 2,
    "failure_reason": None,
    "created_at": "2026-01-01T00:00:00Z",
    "decided_at": None,
    "confirmed_at": None,
    "cancelled_at": None,
    "queue_position": 0,
    "tickets": {"adult": 2, "child": 0, "senior": 0, "student": 0},
    "seat_category": "standard",
    "accessible": False,
    "reference": None,
    "total": None,
    "currency": "EUR",
    "lines": [],
    "hold_expires_at": None,
    "offer": False,
    "refund": None,
}
ERROR = {"code": "not_found", "message": "Not found.", "details": {}}


def check(body, *, status=200, method="get", path=BOOKING_PATH, content_type="application/json"):
    openapi_check.check(
        method=method,
        path=path,
        query="",
        status=status,
        headers={},
        content_type=content_type,
        body=json.dumps(body).encode(),
    )


def test_what_the_server_sends_passes():
    check(PENDING)
    check({**PENDING, "status": "failed", "failure_reason": "sold_out", "decided_at": "2026-01-01T00:00:01Z"})
    check(ERROR, status=404)
    check(ERROR, status=404, path=BOOKING_PATH + "/")  # the trailing-slash twin is the same operation


@pytest.mark.parametrize(
    "change",
    [
        {"queue": 3},  # a field the schema does not declare
        {"failure_reason": "bogus"},  # not one of the enum
        {"status": None},  # null where the schema does not allow it
        {"quantity": "2"},  # wrong type
        {"id": "not-a-uuid"},  # wrong format
    ],
    ids=["undeclared", "enum", "null", "type", "format"],
)
def test_a_body_the_schema_does_not_describe_is_refused(change):
    with pytest.raises(AssertionError, match="does not match the published schema"):
        check({**PENDING, **change})


def test_a_missing_field_is_refused():
    body = dict(PENDING)
    del body["seats"]
    with pytest.raises(AssertionError, match="seats"):
        check(body)


def test_an_undocumented_status_is_refused():
    with pytest.raises(AssertionError, match="418"):
        check(ERROR, status=418)


def test_a_route_or_method_not_in_the_schema_may_only_give_the_error_shape():
    check({**ERROR, "code": "method_not_allowed"}, status=405, method="put")
    check(ERROR, status=404, path="/api/v1/nowhere")
    with pytest.raises(AssertionError):
        check({"detail": "Not found."}, status=404, path="/api/v1/nowhere")
    with pytest.raises(AssertionError, match="success"):
        check({}, status=200, path="/api/v1/nowhere")


def test_other_paths_are_out_of_scope():
    check({"anything": True}, status=200, path="/admin/")
