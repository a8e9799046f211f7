"""Bearer tokens that must not work: expired, tampered, unsigned (alg none), signed with
another algorithm or key, of the wrong type, blacklisted, or of a user who is gone. Each is
a 401 with a WWW-Authenticate challenge and the error shape, on a protected route."""

import base64
import json
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PROTECTED = ["/api/v1/auth/me", "/api/v1/bookings"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _refused(token: str | None, *, header: str | None = None) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header or f"Bearer {token}")
    for path in PROTECTED:
        response = client.get(path)
        assert response.status_code == 401, (path, response.content)
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert set(response.json()) == {"code", "message", "details"}


@pytest.fixture
def access(user) -> str:
    token = str(AccessToken.for_user(user))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v1/auth/me").status_code == 200  # the untouched token works
    return token


def test_an_expired_token(user):
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=1))
    _refused(str(token))


def test_a_tampered_signature(access):
    head, payload, signature = access.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    _refused(f"{head}.{payload}.{flipped}")


def test_a_tampered_payload_with_the_old_signature(access, staff):
    head, _, signature = access.split(".")
    claims = {**_claims(access), "user_id": str(staff.pk)}
    _refused(f"{head}.{_b64(json.dumps(claims).encode())}.{signature}")


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_an_unsigned_token_alg_none(access, alg):
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims(access)).encode())
    _refused(f"{header}.{payload}.")


@pytest.mark.filterwarnings("ignore:The HMAC key is")  # short for HS512, which is beside the point
def test_another_algorithm_with_the_right_key(access):
    _refused(jwt.encode(_claims(access), settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS512"))


def test_the_right_algorithm_with_another_key(access):
    _refused(jwt.encode(_claims(access), "not-the-signing-key-" * 3, algorithm="HS256"))


def test_a_refresh_token_used_as_an_access_token(user):
    _refused(str(RefreshToken.for_user(user)))


def test_an_access_token_used_as_a_refresh_token(api, access):
    response = api.post("/api/v1/auth/refresh", {"refresh": access})
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_a_refresh_token_blacklisted_by_logout(api, user):
    refresh = str(RefreshToken.for_user(user))
    assert api.post("/api/v1/auth/logout", {"refresh": refresh}).status_code == 204
    for path in ("/api/v1/auth/refresh", "/api/v1/auth/logout"):
        response = api.post(path, {"refresh": refresh})
        assert response.status_code == 401, path
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_the_token_of_a_deleted_or_deactivated_user(user, other_user):
    gone, inactive = str(AccessToken.for_user(user)), str(AccessToken.for_user(other_user))
    user.delete()
    other_user.is_active = False
    other_user.save()
    _refused(gone)
    _refused(inactive)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer a.b.c",
        "Bearer a b",
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "bearer x.y.z",
        "Bearer \u00e9",
    ],
)
def test_malformed_authorization_headers(header):
    _refused(None, header=header)


def test_a_token_for_a_user_that_never_existed():
    claims = {**_claims(str(AccessToken.for_user(UserFactory.build(id=987_654_321))))}
    _refused(jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256"))
