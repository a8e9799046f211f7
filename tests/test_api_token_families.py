"""Refresh tokens: one winner per token, a used token revokes its family, a password change
or a deleted user ends every token, and none of it is ever a 500."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from core.exceptions import NotAuthenticated
from core.models import RefreshTokenFamily
from core.services.auth import token_refresh
from tests.factories import PASSWORD, UserFactory

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"


def _login(user, password: str = PASSWORD) -> dict:
    response = APIClient().post(LOGIN, {"username": user.username, "password": password})
    assert response.status_code == 200, response.content
    return response.json()


def _refresh(token: str):
    return APIClient().post(REFRESH, {"refresh": token})


def _refused(response, code: str = "token_not_valid") -> None:
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == code


def _me(access: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client.get(ME).status_code


# ---- reuse, logout, deleted users -------------------------------------------------------


@pytest.mark.django_db
def test_a_used_refresh_token_revokes_its_family(user):
    stolen = _login(user)["refresh"]
    owner = _refresh(stolen)
    assert owner.status_code == 200
    # The thief (or the owner) presents the token that was rotated already.
    _refused(_refresh(stolen))
    # Nobody can tell who is who: the newest token of the family is refused as well.
    _refused(_refresh(owner.json()["refresh"]))
    family = RefreshTokenFamily.objects.get(user=user)
    assert family.revoked_reason == RefreshTokenFamily.RevokedReason.REUSE
    # Another login (another family) is untouched.
    assert _refresh(_login(user)["refresh"]).status_code == 200


@pytest.mark.django_db
def test_reuse_deep_in_the_chain_revokes_the_family(user):
    chain = [_login(user)["refresh"]]
    for _ in range(3):
        chain.append(_refresh(chain[-1]).json()["refresh"])
    _refused(_refresh(chain[1]))
    _refused(_refresh(chain[-1]))


@pytest.mark.django_db
def test_logout_ends_the_family_and_a_used_token_cannot_log_out(user):
    first = _login(user)["refresh"]
    rotated = _refresh(first).json()["refresh"]
    assert APIClient().post(LOGOUT, {"refresh": rotated}).status_code == 204
    _refused(_refresh(rotated))
    _refused(APIClient().post(LOGOUT, {"refresh": rotated}))
    family = RefreshTokenFamily.objects.get(user=user)
    assert family.revoked_reason == RefreshTokenFamily.RevokedReason.LOGOUT


@pytest.mark.django_db
def test_the_refresh_token_of_a_deleted_or_inactive_user_is_401(user, other_user):
    gone = _login(user)["refresh"]
    rotated_gone = _refresh(_login(user)["refresh"]).json()["refresh"]  # its family exists
    inactive = _login(other_user)["refresh"]
    user.delete()
    other_user.is_active = False
    other_user.save()
    for token in (gone, rotated_gone, inactive):
        _refused(_refresh(token), code="no_active_account")
        _refused(APIClient().post(LOGOUT, {"refresh": token}), code="no_active_account")


# ---- password changes ---------------------------------------------------------------------


def _live_outstanding(user) -> list:
    """The user's refresh tokens that are not blacklisted."""
    return list(OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True))


@pytest.mark.django_db
def test_a_password_change_ends_every_token_of_the_user(user, other_user):
    phone, laptop = _login(user), _login(user)
    laptop = {**laptop, **_refresh(laptop["refresh"]).json()}  # a family that has rotated
    bystander = _login(other_user)
    user.set_password("a-new-passphrase-7")
    user.save()
    for tokens in (phone, laptop):
        _refused(_refresh(tokens["refresh"]), code="password_changed")
        assert _me(tokens["access"]) == 401
    # Revoked in the database too, not only refused by the password fingerprint.
    assert set(RefreshTokenFamily.objects.filter(user=user).values_list("revoked_reason", flat=True)) == {
        RefreshTokenFamily.RevokedReason.PASSWORD_CHANGED
    }
    assert not _live_outstanding(user)
    # The new password's tokens work; another user's are untouched.
    fresh = _login(user, "a-new-passphrase-7")
    assert _refresh(fresh["refresh"]).status_code == 200
    assert _me(fresh["access"]) == 200
    assert _refresh(bystander["refresh"]).status_code == 200


@pytest.mark.django_db
def test_the_admin_password_form_ends_the_users_tokens(admin_client, user):
    tokens = _login(user)
    response = admin_client.post(
        f"/admin/auth/user/{user.pk}/password/",
        {"password1": "a-new-passphrase-7", "password2": "a-new-passphrase-7", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    user.refresh_from_db()
    assert user.check_password("a-new-passphrase-7")
    _refused(_refresh(tokens["refresh"]), code="password_changed")
    assert _me(tokens["access"]) == 401
    assert not _live_outstanding(user)


@pytest.mark.django_db
def test_saving_a_user_without_a_new_password_keeps_the_tokens(user):
    tokens = _login(user)
    assert _live_outstanding(user)
    user.email = "renamed@example.com"
    user.save()
    user.last_login = None
    user.save(update_fields=["last_login"])
    assert _live_outstanding(user)
    assert _refresh(tokens["refresh"]).status_code == 200
    assert _me(tokens["access"]) == 200


@pytest.mark.django_db
def test_issued_tokens_carry_the_password_fingerprint_and_the_family(user):
    import jwt

    tokens = _login(user)
    rotated = _refresh(tokens["refresh"]).json()
    for token in (tokens["access"], tokens["refresh"], rotated["access"], rotated["refresh"]):
        assert "hash_password" in jwt.decode(token, options={"verify_signature": False})
    root = jwt.decode(tokens["refresh"], options={"verify_signature": False})["jti"]
    assert jwt.decode(rotated["refresh"], options={"verify_signature": False})["fam"] == root


# ---- races --------------------------------------------------------------------------------


def _waiting_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


@pytest.mark.parametrize("first_use", [True, False], ids=["login-token", "rotated-token"])
@pytest.mark.django_db(transaction=True)
def test_two_refreshes_of_one_token_have_one_winner(first_use):
    """A holds its rotation's transaction open (the family row locked); B refreshes the same
    token meanwhile and must wait; once A commits, B finds the token used: 401, and the
    family, A's new token included, is revoked."""
    user = UserFactory()
    token = _login(user)["refresh"]
    if not first_use:
        token = _refresh(token).json()["refresh"]

    rotated, release, b_pid = threading.Event(), threading.Event(), []
    results: dict = {}

    def holder():
        try:
            with transaction.atomic():
                results["a"] = token_refresh(refresh=token)
                rotated.set()
                release.wait(timeout=60)
        finally:
            rotated.set()
            connection.close()

    def contender():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                b_pid.append(cursor.fetchone()[0])
            results["b"] = _refresh(token)
        finally:
            connection.close()

    a = threading.Thread(target=holder)
    a.start()
    try:
        assert rotated.wait(timeout=60)
        assert "refresh" in results.get("a", {}), "A's rotation failed"
        b = threading.Thread(target=contender)
        b.start()
        deadline = time.monotonic() + 60
        while not (b_pid and _waiting_on_a_lock(b_pid[0])):
            assert b.is_alive(), "B finished without waiting for A's lock"
            assert time.monotonic() < deadline, "B never waited for A's lock"
            time.sleep(0.01)
    finally:
        release.set()
        a.join(timeout=60)
    b.join(timeout=60)
    _refused(results["b"])
    with pytest.raises(NotAuthenticated):
        token_refresh(refresh=results["a"]["refresh"])
    assert RefreshTokenFamily.objects.get(user=user).revoked_reason == RefreshTokenFamily.RevokedReason.REUSE


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_parallel_refreshes_of_one_token_through_gunicorn(live_stack):
    """Eight clients refresh one token at the same moment through gunicorn (2 processes x 4
    threads): exactly one gets a new pair, and the others' reuse revokes it."""
    user = UserFactory()
    with live_stack.client() as client:
        login = client.post(LOGIN, json={"username": user.username, "password": PASSWORD})
        assert login.status_code == 200, login.text
        token = client.post(REFRESH, json={"refresh": login.json()["refresh"]}).json()["refresh"]

    parallel = 8
    start = threading.Barrier(parallel)

    def refresh(_):
        with live_stack.client() as client:
            client.get("/healthz")  # connected before the start line
            start.wait(timeout=60)
            return client.post(REFRESH, json={"refresh": token})

    with ThreadPoolExecutor(parallel) as pool:
        responses = list(pool.map(refresh, range(parallel)))
    assert sorted(r.status_code for r in responses) == [200] + [401] * (parallel - 1), [r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 200)
    with live_stack.client() as client:
        again = client.post(REFRESH, json={"refresh": winner["refresh"]})
    assert again.status_code == 401, again.text
