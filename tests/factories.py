from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from core.models import Movie, Screen, Show

PASSWORD = "pass-word-123"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)


class MovieFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Movie

    title = factory.Sequence(lambda n: f"Movie {n}")
    description = "A film."
    duration_minutes = 120
    genre = "Drama"
    language = "English"
    rating = "PG"


class ScreenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Screen

    name = factory.Sequence(lambda n: f"Screen {n}")
    rows = 10
    seats_per_row = 10


class ShowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Show

    movie = factory.SubFactory(MovieFactory)
    screen = factory.SubFactory(ScreenFactory)
    starts_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))
    ends_at = factory.LazyAttribute(lambda s: s.starts_at + timedelta(minutes=s.movie.duration_minutes))
    price = Decimal("12.50")
