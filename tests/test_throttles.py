"""Rate limits: how a client is keyed (IPv4 address, IPv6 /64, the proxy's hop), the
per-username login limit, the admin's login page, and the Redis commands the counters use."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from booking_api.throttles import address_key
from core.redis import redis_client
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login"


@pytest.fixture
def low_rates(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "3/min", "user": "4/min", "auth": "4/min", "login_username": "3/hour"},
    }
    from rest_framework.settings import api_settings

    from booking_api import throttles

    classes = (throttles.AnonThrottle, throttles.UserThrottle, throttles.AuthThrottle, throttles.LoginUsernameThrottle)
    api_settings.reload()
    for cls in classes:
        cls.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    yield
    for cls in classes:
        del cls.THROTTLE_RATES
    api_settings.reload()


def _movies_from(address: str, **extra) -> int:
    return APIClient().get("/api/v1/movies", REMOTE_ADDR=address, **extra).status_code


def _login(username: str, password: str, address: str) -> int:
    return APIClient().post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address).status_code


# ---- client address keys --------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:0db8:0001:0002::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_an_ipv4_client_is_keyed_by_its_address_and_an_ipv6_client_by_its_64(address, key):
    assert address_key(address) == key


def test_addresses_of_one_ipv6_64_share_one_budget(low_rates):
    statuses = [_movies_from(f"2001:db8:1:2::{i:x}") for i in range(1, 5)]
    assert statuses == [200, 200, 200, 429]
    # Another /64 has its own budget.
    assert _movies_from("2001:db8:1:3::1") == 200


def test_ipv4_clients_each_have_their_own_budget(low_rates):
    assert [_movies_from("203.0.113.1") for _ in range(4)][-1] == 429
    assert _movies_from("203.0.113.2") == 200


def test_behind_one_proxy_each_client_is_keyed_by_the_address_the_proxy_saw(low_rates, settings):
    """The production profile (DJANGO_NUM_PROXIES=1): the peer is the proxy, and the proxy
    appends the client's address to X-Forwarded-For. Clients do not share the proxy's budget,
    and what a client writes into the header itself cannot move it to another budget."""
    from rest_framework.settings import api_settings

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    api_settings.reload()
    from booking_api import throttles

    for cls in (throttles.AnonThrottle, throttles.AuthThrottle):
        cls.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES  # reload() dropped the low rates
    proxy = "127.0.0.1"
    first = [_movies_from(proxy, HTTP_X_FORWARDED_FOR=f"10.9.9.{i}, 198.51.100.1") for i in range(4)]
    assert first == [200, 200, 200, 429]
    assert _movies_from(proxy, HTTP_X_FORWARDED_FOR="198.51.100.2") == 200


# ---- per-username login limit ----------------------------------------------------------


def test_failed_logins_for_one_username_are_limited_whatever_the_address(low_rates):
    victim = UserFactory(username="victim")
    # Each guess from a new address (and a new /64): the address limits never apply.
    statuses = [_login("victim", f"guess-{i}", f"2001:db8:{i}::1") for i in range(4)]
    assert statuses == [401, 401, 401, 429]
    # The right password is refused too while the limit holds: otherwise a 200 among the
    # 429s would tell the guesser which password is right.
    assert _login(victim.username, PASSWORD, "2001:db8:99::1") == 429
    # Spelled differently (case, width), it is the same account's budget.
    assert _login("VICTIM", "guess", "2001:db8:98::1") == 429
    assert _login("\uff56\uff49\uff43\uff54\uff49\uff4d", "guess", "2001:db8:97::1") == 429  # full-width
    # Other accounts are not affected.
    other = UserFactory()
    assert _login(other.username, PASSWORD, "2001:db8:96::1") == 200


def test_a_refused_login_says_when_to_retry(low_rates):
    UserFactory(username="victim")
    for i in range(3):
        _login("victim", "guess", f"198.51.100.{i}")
    response = APIClient().post(LOGIN, {"username": "victim", "password": "guess"}, REMOTE_ADDR="198.51.100.9")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 3600


def test_successful_logins_do_not_count_against_the_username(low_rates):
    user = UserFactory()
    statuses = [_login(user.username, PASSWORD, f"198.51.100.{i}") for i in range(6)]
    assert statuses == [200] * 6
    # Its budget of failures is untouched.
    assert [_login(user.username, "wrong", f"198.51.100.{i}") for i in range(10, 14)] == [401, 401, 401, 429]


def test_logins_refused_by_the_address_limit_do_not_count_against_the_username(low_rates):
    """A customer behind a busy address who retries the right password while the address is
    limited has failed nothing: their account's budget stays whole."""
    user = UserFactory()
    statuses = [_login(user.username, PASSWORD, "198.51.100.1") for _ in range(6)]
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert [_login(user.username, "wrong", f"198.51.100.{i}") for i in range(10, 14)] == [401, 401, 401, 429]


def test_admin_logins_refused_by_the_address_limit_do_not_count_against_the_username(low_rates):
    UserFactory(username="boss", is_staff=True)
    statuses = [_admin_login("boss", PASSWORD, "203.0.113.5").status_code for _ in range(6)]
    assert statuses == [302, 302, 302, 302, 429, 429]
    assert [_admin_login("boss", "wrong", f"203.0.113.{i}").status_code for i in range(10, 14)] == [200, 200, 200, 429]


# ---- the admin's login page ------------------------------------------------------------


def _admin_login(username: str, password: str, address: str):
    return Client().post(
        "/admin/login/?next=/admin/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_the_admin_login_is_limited_per_username(low_rates):
    admin = UserFactory(username="boss", is_staff=True, is_superuser=True)
    statuses = [_admin_login("boss", f"guess-{i}", f"203.0.113.{i}").status_code for i in range(3)]
    assert statuses == [200, 200, 200]  # the form again, with Django's error
    refused = _admin_login(admin.username, PASSWORD, "203.0.113.50")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 3600
    assert b"Too many login attempts" in refused.content
    assert b"<form" in refused.content  # the login page, not an error page
    assert "_auth_user_id" not in refused.wsgi_request.session
    # The API's login shares the budget: the admin is no side door, nor the other way round.
    assert _login("boss", PASSWORD, "203.0.113.51") == 429


def test_the_admin_login_is_limited_per_address(low_rates):
    statuses = [_admin_login(f"user{i}", "guess", "203.0.113.5").status_code for i in range(5)]
    assert statuses == [200, 200, 200, 200, 429]


def test_a_successful_admin_login_does_not_count(low_rates):
    UserFactory(username="boss", is_staff=True)
    for i in range(4):
        response = _admin_login("boss", PASSWORD, f"203.0.113.{i}")
        assert response.status_code == 302, response.content[:500]
    assert _admin_login("boss", "wrong", "203.0.113.60").status_code == 200


# ---- the counters' Redis commands ------------------------------------------------------


def _commands_of(action) -> list[list[str]]:
    """The commands this test's Redis database received while `action` ran (MONITOR)."""
    client = redis_client()
    db = client.connection_pool.connection_kwargs.get("db", 0)
    marker = "throttle-test-end-marker"
    commands = []
    with client.monitor() as monitor:
        action()
        client.echo(marker)
        while True:
            entry = monitor.next_command()
            if marker in entry["command"]:
                break
            if int(entry["db"]) == int(db):
                commands.append(entry["command"].split())
    return commands


def test_throttles_use_only_commands_redis_6_2_has(low_rates):
    """EXPIRE's NX/XX/GT/LT options came with Redis 7; the service promises Redis 6.2."""
    user = UserFactory()

    def requests():
        _movies_from("198.51.100.1")
        _login(user.username, "wrong", "198.51.100.2")
        _login(user.username, PASSWORD, "198.51.100.3")

    commands = _commands_of(requests)
    assert any(c[0].upper() in ("EVALSHA", "EVAL") for c in commands), commands
    expires = [c for c in commands if c[0].upper() in ("EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT")]
    assert all(len(c) == 3 for c in expires), expires


def test_a_window_counter_gets_its_expiry_once_and_keeps_it(low_rates):
    _movies_from("198.51.100.1")
    client = redis_client()
    (key,) = client.scan_iter("booking:throttle:anon:198.51.100.1:*")
    assert 0 < client.ttl(key) <= 61
    client.expire(key, 5)
    _movies_from("198.51.100.1")
    assert int(client.get(key)) == 2
    assert 0 < client.ttl(key) <= 5  # a later hit does not extend the window


def test_a_success_after_its_window_ended_leaves_no_counter_behind(low_rates):
    from booking_api.throttles import LoginUsernameThrottle, forgive_login_attempt

    class _Request:
        data = {"username": "someone"}
        META = {"REMOTE_ADDR": "198.51.100.1"}

    request = _Request()
    assert LoginUsernameThrottle().allow_request(request, None)
    counter = request._booking_login_attempt_counter
    client = redis_client()
    assert int(client.get(counter)) == 1
    client.delete(counter)  # the window ended before the login finished
    forgive_login_attempt(request)
    assert client.exists(counter) == 0  # a DECR would have left a counter without expiry
