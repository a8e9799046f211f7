"""Data made up front, straight in the benchmark's database: users, tokens, shows, and the
pending bookings of the backlog scenario (as the API would have left them)."""

import random
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from core.models import Movie, Screen, Show
from core.seating import ROW_LETTERS


@dataclass(frozen=True)
class BenchUser:
    id: int
    token: str


def make_users(count: int, *, prefix: str) -> list[BenchUser]:
    """Active users with unusable passwords, and an access token for each (made the way
    the login endpoint makes them, without its password hashing)."""
    User = get_user_model()
    # "!" starts Django's unusable-password marker: these users cannot log in.
    unusable = make_password(None)
    users = User.objects.bulk_create(
        [User(username=f"{prefix}{i}", email=f"{prefix}{i}@bench.local", password=unusable) for i in range(count)]
    )
    return [BenchUser(user.pk, str(AccessToken.for_user(user))) for user in users]


_screens = 0


def make_show(*, rows: int, seats_per_row: int, title: str = "Opening Night") -> Show:
    global _screens
    _screens += 1
    movie = Movie.objects.create(title=title, duration_minutes=120)
    screen = Screen.objects.create(name=f"Bench screen {_screens}", rows=rows, seats_per_row=seats_per_row)
    starts_at = timezone.now() + timedelta(days=1)
    return Show.objects.create(
        movie=movie,
        screen=screen,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=120),
        price=Decimal("12.50"),
    )


def request_mix(count: int, *, rows: int, seats_per_row: int, rng: random.Random) -> list[dict]:
    """A flash sale's requests: about a third name exact seats, all in the middle rows so
    that they overlap on purpose; the rest ask for a quantity (mostly 1 or 2)."""
    hot_rows = range(max(0, rows // 2 - max(1, rows // 5)), min(rows, rows // 2 + max(1, rows // 5)))
    requests = []
    for _ in range(count):
        if rng.random() < 0.35:
            row = ROW_LETTERS[rng.choice(hot_rows)]
            length = rng.randint(1, min(4, seats_per_row))
            middle = seats_per_row // 2
            spread = max(1, seats_per_row // 4)
            start = rng.randint(max(1, middle - spread), max(1, min(seats_per_row - length + 1, middle + spread)))
            requests.append({"seats": [f"{row}{n}" for n in range(start, start + length)]})
        else:
            requests.append({"quantity": rng.choices([1, 2, 3, 4], weights=[30, 40, 15, 15])[0]})
    return requests


def insert_pending(*, show: Show, users: list[BenchUser], requests: list[dict], chunk: int = 5000) -> None:
    """Pending bookings in acceptance order, as POST /bookings writes them (one sequence
    number each, in list order), without queueing anything."""
    with connection.cursor() as cursor:
        for start in range(0, len(requests), chunk):
            part = requests[start : start + chunk]
            cursor.execute(
                """
                INSERT INTO core_booking
                    (id, user_id, show_id, status, seats, quantity, request_fingerprint, decide_attempts, created_at)
                SELECT gen_random_uuid(), u, %s, 'pending', string_to_array(s, ',')::varchar(4)[], q, '', 0,
                       clock_timestamp()
                FROM unnest(%s::bigint[], %s::text[], %s::int[]) WITH ORDINALITY AS t(u, s, q, n)
                ORDER BY n
                """,
                [
                    show.pk,
                    [users[(start + i) % len(users)].id for i in range(len(part))],
                    [",".join(r.get("seats", [])) for r in part],
                    [len(r["seats"]) if "seats" in r else r["quantity"] for r in part],
                ],
            )
