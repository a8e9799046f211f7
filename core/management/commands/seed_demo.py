"""Load a realistic demo catalogue: a dozen movies, screens of different sizes and a week of
shows. Safe to run again: movies and screens are matched by name, and a show is only added
where its screen is free, so a second run adds nothing."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from core.models import Movie, Screen, Show
from core.services.catalogue import show_create

MOVIES = [
    ("The Last Projectionist", "Drama", "English", "PG-13", 124, "A small-town cinema's final summer."),
    (
        "Orbit of Glass",
        "Science Fiction",
        "English",
        "PG-13",
        142,
        "A salvage crew finds a ship that should not exist.",
    ),
    ("Midnight at the Paradiso", "Thriller", "Italian", "R", 108, "A heist during a film festival premiere."),
    ("Paper Lanterns", "Animation", "Japanese", "G", 96, "Two siblings follow a lantern across a city of spirits."),
    ("Cold Harbour", "Crime", "English", "R", 131, "A detective returns to the port town she fled."),
    ("La Cuisine du Coeur", "Comedy", "French", "PG", 101, "A Michelin chef inherits a roadside diner."),
    ("Echoes of the Dunes", "Adventure", "Arabic", "PG-13", 137, "A cartographer's last map leads into the desert."),
    ("Tiny Giants", "Family", "English", "G", 89, "Backyard insects defend their garden."),
    ("The Quiet Variable", "Mystery", "German", "PG-13", 115, "A mathematician's proof predicts a crime."),
    ("Monsoon Letters", "Romance", "Hindi", "PG", 128, "Letters lost for forty years are delivered in one week."),
    ("Steel Horizon", "Action", "Korean", "R", 119, "A train crosses a border that has just closed."),
    ("Northern Lights Requiem", "Documentary", "Norwegian", "PG", 92, "A year with the last lighthouse keeper."),
]

# (name, rows, seats per row, seat categories): a large hall, mid-size rooms and a studio.
# Premium rows towards the back, wheelchair spaces at the row ends of the front row (step-free
# access) with a companion seat beside each.
SCREENS = [
    (
        "Screen 1 - IMAX",
        20,
        30,
        {
            "premium_rows": ["N", "O", "P"],
            "accessible_seats": ["A1", "A2", "A29", "A30"],
            "companion_seats": ["A3", "A4", "A27", "A28"],
        },
    ),
    (
        "Screen 2",
        12,
        18,
        {"premium_rows": ["H", "J"], "accessible_seats": ["A1", "A18"], "companion_seats": ["A2", "A17"]},
    ),
    ("Screen 3", 10, 14, {"premium_rows": ["G"], "accessible_seats": ["A1", "A14"], "companion_seats": ["A2", "A13"]}),
    ("Screen 4 - Studio", 6, 10, {"accessible_seats": ["A1"], "companion_seats": ["A2"]}),
]
# Discounts off the standard adult price; premium, accessible and companion seats follow the
# fallback rule (core/pricing.py).
DISCOUNTS = {"child": Decimal("3.00"), "senior": Decimal("2.00"), "student": Decimal("1.50")}
SHOW_TIMES = [time(11, 0), time(14, 30), time(18, 0), time(21, 30)]
DAYS = 7


class Command(BaseCommand):
    help = "Load a demo catalogue (movies, screens, a week of shows); running it twice adds nothing."

    def add_arguments(self, parser):
        parser.add_argument(
            "--with-users",
            action="store_true",
            help="Also create demo/demo-pass-123 and admin/admin-pass-123 (development only: "
            "DJANGO_DEBUG=1 or DEMO_USERS=1).",
        )

    @transaction.atomic
    def handle(self, *args, **options):
        # Their passwords are published in the README: anywhere else they are open doors.
        if options["with_users"] and not (settings.DEBUG or settings.DEMO_USERS):
            raise CommandError(
                "--with-users creates accounts with published passwords; it runs only in development "
                "(DJANGO_DEBUG=1 or DEMO_USERS=1). Nothing was created."
            )
        movies = [self._movie(*spec) for spec in MOVIES]
        screens = [self._screen(*spec) for spec in SCREENS]
        created = self._shows(movies, screens)
        if options["with_users"]:
            self._users()
        self.stdout.write(
            self.style.SUCCESS(f"Demo catalogue: {len(movies)} movies, {len(screens)} screens, {created} new shows.")
        )

    def _movie(self, title, genre, language, rating, minutes, description) -> Movie:
        movie, _ = Movie.objects.get_or_create(
            title=title,
            defaults={
                "genre": genre,
                "language": language,
                "rating": rating,
                "duration_minutes": minutes,
                "description": description,
                "release_date": date(2026, 1, 1) + timedelta(days=minutes),
            },
        )
        return movie

    @staticmethod
    def _screen(name, rows, seats_per_row, categories) -> Screen:
        screen, created = Screen.objects.get_or_create(
            name=name, defaults={"rows": rows, "seats_per_row": seats_per_row, **categories}
        )
        # A screen seeded before seat categories existed gets them, once.
        if not created and not (screen.premium_rows or screen.accessible_seats or screen.companion_seats):
            for field, value in categories.items():
                setattr(screen, field, value)
            screen.full_clean()
            screen.save()
        return screen

    def _shows(self, movies, screens) -> int:
        today = timezone.localdate()
        created = 0
        for day in range(DAYS):
            for slot, show_time in enumerate(SHOW_TIMES):
                for index, screen in enumerate(screens):
                    movie = movies[(day * len(SHOW_TIMES) * len(screens) + slot * len(screens) + index) % len(movies)]
                    starts_at = timezone.make_aware(datetime.combine(today + timedelta(days=day), show_time))
                    if starts_at <= timezone.now() or self._screen_busy(screen, starts_at, movie):
                        continue
                    price = (
                        Decimal("9.50") + Decimal(3 if slot >= 2 else 0) + Decimal(4 if "IMAX" in screen.name else 0)
                    )
                    prices = [
                        {"ticket_type": t, "seat_category": "standard", "amount": price - off}
                        for t, off in DISCOUNTS.items()
                    ]
                    # The IMAX evenings sell in two steps (held until paid), to try the payment
                    # flow with the fake provider's tokens; the rest confirm at once.
                    paying = "IMAX" in screen.name and slot >= 2
                    show_create(
                        movie=movie,
                        screen=screen,
                        starts_at=starts_at,
                        price=price,
                        prices=prices,
                        payment_required=paying,
                    )
                    created += 1
        return created

    @staticmethod
    def _screen_busy(screen, starts_at, movie) -> bool:
        ends_at = Show.end_for(starts_at=starts_at, movie=movie)
        return Show.objects.filter(
            screen=screen, status=Show.Status.SCHEDULED, starts_at__lt=ends_at, ends_at__gt=starts_at
        ).exists()

    def _users(self) -> None:
        User = get_user_model()
        if not User.objects.filter(username="demo").exists():
            User.objects.create_user("demo", "demo@example.com", "demo-pass-123")
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", "admin@example.com", "admin-pass-123")
