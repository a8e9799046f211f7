"""Schemathesis hooks for the API fuzzing run (loaded with SCHEMATHESIS_HOOKS, see
tests/test_schemathesis.py)."""

import schemathesis
from schemathesis.specs.openapi.checks import content_type_conformance, use_after_free


@schemathesis.check
def content_type_unless_no_content(ctx, response, case):
    """content_type_conformance, except for a 204: it has no content and so no Content-Type
    (RFC 9110, 15.3.5), which Swagger 2.0 has no way to say for one response only."""
    if response.status_code == 204:
        return None
    return content_type_conformance(ctx, response, case)


@schemathesis.check
def use_after_free_but_a_cancelled_booking(ctx, response, case):
    """use_after_free, except after DELETE /bookings/{id}: by the contract that DELETE is a
    cancel, and the booking stays readable (`cancelled`), so a 200 afterwards is right.
    Every other DELETE must leave its resource gone."""
    if case.operation.path.startswith("/bookings/{booking_id}"):
        return None
    return use_after_free(ctx, response, case)
