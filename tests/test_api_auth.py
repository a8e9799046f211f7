"""Signup, login, refresh rotation, logout and /me, as the contract describes them."""

import pytest

from core.services.users import SIGNUP_REFUSED
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

SIGNUP = "/api/v1/auth/signup"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"


def _login(api, user):
    response = api.post(LOGIN, {"username": user.username, "password": PASSWORD})
    assert response.status_code == 200, response.content
    return response.json()


def test_signup_creates_a_user(api):
    response = api.post(SIGNUP, {"username": "carol", "email": "carol@example.com", "password": "a-long-passphrase-1"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "username", "email"}
    assert body["username"] == "carol"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"username": "USER_TAKEN", "email": "new@example.com", "password": "a-long-passphrase-1"}, "username"),
        ({"username": "fresh", "email": "fresh@example.com", "password": "123"}, "password"),
        ({"username": "fresh", "email": "fresh@example.com", "password": "password"}, "password"),
        ({"username": "fresh", "email": "not-an-email", "password": "a-long-passphrase-1"}, "email"),
        ({"username": "has space", "email": "fresh@example.com", "password": "a-long-passphrase-1"}, "username"),
        ({"email": "fresh@example.com", "password": "a-long-passphrase-1"}, "username"),
    ],
)
def test_signup_refusals_are_400_with_field_details(api, payload, field):
    from tests.factories import UserFactory

    UserFactory(username="user_taken", email="taken@example.com")
    response = api.post(SIGNUP, payload)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert field in body["details"]


@pytest.mark.parametrize(
    "payload",
    [
        {"username": "fresh", "email": "TAKEN@example.com", "password": "a-long-passphrase-1"},
        {"username": "USER_TAKEN", "email": "taken@example.com", "password": "a-long-passphrase-1"},
        {"username": "fresh", "email": "taken@example.com", "password": "123"},
    ],
    ids=["email-alone", "with-a-taken-username", "with-a-weak-password"],
)
def test_signup_never_says_that_an_email_has_an_account(api, payload):
    """A taken email is refused (400, as the contract says) with the message every refused
    signup gets, and no detail naming the email: the answer is the one the same request
    would get with an email nobody uses, but for the account it would have created."""
    from tests.factories import UserFactory

    UserFactory(username="user_taken", email="taken@example.com")
    refused = api.post(SIGNUP, payload)
    assert refused.status_code == 400
    body = refused.json()
    assert "email" not in body["details"]
    assert "email" not in body["message"].lower()
    assert body["message"] == SIGNUP_REFUSED
    # The same request with an unused email: the same answer when it fails for another reason.
    unused = api.post(SIGNUP, {**payload, "email": "unused@example.com"})
    if unused.status_code == 400:
        assert unused.json() == body
    else:
        assert unused.status_code == 201


def test_login_returns_a_token_pair(api, user):
    tokens = _login(api, user)
    assert set(tokens) == {"access", "refresh"}


def test_wrong_credentials_are_401(api, user):
    response = api.post(LOGIN, {"username": user.username, "password": "wrong"})
    assert response.status_code == 401
    assert response.json()["code"] == "no_active_account"
    assert "WWW-Authenticate" in response.headers


def test_login_ignores_a_stale_authorization_header(api, user):
    api.credentials(HTTP_AUTHORIZATION="Bearer expired.or.garbage")
    assert api.post(LOGIN, {"username": user.username, "password": PASSWORD}).status_code == 200


def test_refresh_rotates_and_a_used_refresh_token_is_401(api, user):
    tokens = _login(api, user)
    first = api.post(REFRESH, {"refresh": tokens["refresh"]})
    assert first.status_code == 200
    rotated = first.json()
    assert set(rotated) == {"access", "refresh"}
    assert rotated["refresh"] != tokens["refresh"]
    # The rotated token keeps working, once.
    second = api.post(REFRESH, {"refresh": rotated["refresh"]})
    assert second.status_code == 200
    again = api.post(REFRESH, {"refresh": rotated["refresh"]})
    assert again.status_code == 401
    assert again.json()["code"] == "token_not_valid"
    # A used token is a copy: its whole family is revoked (test_api_token_families.py).
    assert api.post(REFRESH, {"refresh": second.json()["refresh"]}).status_code == 401


def test_logout_blacklists_the_refresh_token(api, user):
    tokens = _login(api, user)
    assert api.post(LOGOUT, {"refresh": tokens["refresh"]}).status_code == 204
    assert api.post(REFRESH, {"refresh": tokens["refresh"]}).status_code == 401


def test_logout_with_a_bad_token_is_401(api):
    assert api.post(LOGOUT, {"refresh": "nope"}).status_code == 401


def test_me_returns_the_current_user(api, user):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {_login(api, user)['access']}")
    response = api.get(ME)
    assert response.status_code == 200
    assert response.json() == {"id": user.pk, "username": user.username, "email": user.email, "is_staff": False}


@pytest.mark.parametrize("staff", [False, True])
def test_me_is_rendered_as_its_serializer_says(staff):
    """me_representation (the hot path) renders exactly what MeOutputSerializer documents."""
    from booking_api.serializers.auth import MeOutputSerializer, me_representation
    from tests.factories import UserFactory

    user = UserFactory(is_staff=staff, email="é@example.com")
    assert me_representation(user) == MeOutputSerializer(user).data


@pytest.mark.parametrize("header", [None, "Bearer garbage", "Token abc"])
def test_me_without_a_valid_token_is_401_with_a_challenge(api, header):
    if header:
        api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get(ME)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert {"code", "message", "details"} <= set(response.json())


def test_a_refresh_token_is_not_an_access_token(api, user):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {_login(api, user)['refresh']}")
    assert api.get(ME).status_code == 401
