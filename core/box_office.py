"""The box-office dashboard's figures (reads only): per show, and per day (the shows that
start that day in the server's TIME_ZONE), all computed by aggregate queries in PostgreSQL.

Every booking query is scoped to the shows asked for and reads them through the
(show, status) index, so its cost follows the bookings of those shows (a sold-out evening:
tens of thousands), never the size of the table (millions). `bench/dashboard.py` measures
it against the naive query at a million bookings.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.utils import timezone

from core.models import Booking, Show

Status = Booking.Status
_BOOKING = Booking._meta.db_table
# The per-minute series covers this many minutes up to the newest decision of the scope.
RATE_WINDOW_MINUTES = 60


@dataclass
class ShowFigures:
    show_id: int
    title: str
    screen: str
    starts_at: datetime
    capacity: int
    status: str
    sold: int = 0
    held: int = 0
    pending: int = 0
    revenue: Decimal = Decimal("0.00")
    failures: dict[str, int] = field(default_factory=dict)

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.sold - self.held)

    @property
    def occupancy(self) -> float:
        """Sold and held seats over capacity, in percent."""
        return 100 * (self.sold + self.held) / self.capacity if self.capacity else 0.0


@dataclass
class BoxOffice:
    """One scope (a day, or one show) of the dashboard."""

    day: date
    shows: list[ShowFigures]
    currency: str
    # (minute, decisions) for each minute of the window, oldest first, zeros included.
    decided_per_minute: list[tuple[datetime, int]]
    # Acceptance to decision, in milliseconds: {"p50": .., "p95": .., "p99": ..} (None: no decision).
    latency_ms: dict[str, float | None]
    decided: int

    @property
    def capacity(self) -> int:
        return sum(s.capacity for s in self.shows)

    @property
    def sold(self) -> int:
        return sum(s.sold for s in self.shows)

    @property
    def held(self) -> int:
        return sum(s.held for s in self.shows)

    @property
    def free(self) -> int:
        return sum(s.free for s in self.shows)

    @property
    def pending(self) -> int:
        return sum(s.pending for s in self.shows)

    @property
    def revenue(self) -> Decimal:
        return sum((s.revenue for s in self.shows), Decimal("0.00"))

    @property
    def occupancy(self) -> float:
        return 100 * (self.sold + self.held) / self.capacity if self.capacity else 0.0

    @property
    def failures(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for show in self.shows:
            for reason, count in show.failures.items():
                total[reason] = total.get(reason, 0) + count
        return dict(sorted(total.items(), key=lambda item: -item[1]))


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    zone = ZoneInfo(settings.TIME_ZONE)
    start = datetime.combine(day, time.min, tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)


def box_office_today() -> date:
    return timezone.localdate()


def box_office_get(*, day: date, show_id: int | None = None) -> BoxOffice:
    """The dashboard for the shows starting on `day` (or for the one show `show_id`, on
    whatever day it starts). Five statements: the shows, the seats and revenue by show and
    status, failures by show and reason, decisions per minute, latency percentiles."""
    shows_qs = Show.objects.select_related("movie", "screen").order_by("starts_at", "id")
    if show_id is not None:
        shows_qs = shows_qs.filter(pk=show_id)
    else:
        start, end = _day_bounds(day)
        shows_qs = shows_qs.filter(starts_at__gte=start, starts_at__lt=end)
    shows = [
        ShowFigures(
            show_id=s.pk,
            title=s.movie.title,
            screen=s.screen.name,
            starts_at=s.starts_at,
            capacity=s.screen.rows * s.screen.seats_per_row,
            status=s.status,
        )
        for s in shows_qs
    ]
    if show_id is not None and shows:
        day = timezone.localtime(shows[0].starts_at).date()
    by_id = {s.show_id: s for s in shows}
    ids = list(by_id)
    rates: list[tuple[datetime, int]] = []
    latency: dict[str, float | None] = {"p50": None, "p95": None, "p99": None}
    decided = 0
    if ids:
        with connection.cursor() as cursor:
            _seats_and_revenue(cursor, ids, by_id)
            _failures(cursor, ids, by_id)
            rates = _decided_per_minute(cursor, ids)
            latency, decided = _latency(cursor, ids)
    return BoxOffice(
        day=day,
        shows=shows,
        currency=settings.BOOKING_CURRENCY,
        decided_per_minute=rates,
        latency_ms=latency,
        decided=decided,
    )


def _seats_and_revenue(cursor, ids: list[int], by_id: dict[int, ShowFigures]) -> None:
    # A booking's quantity is its seat count; revenue is what confirmed bookings paid.
    cursor.execute(
        f"SELECT show_id, status, sum(quantity), count(*), sum(total) FROM {_BOOKING} "  # noqa: S608  # nosec B608
        "WHERE show_id = ANY(%s) AND status = ANY(%s) GROUP BY show_id, status",
        [ids, [str(Status.CONFIRMED), str(Status.HELD), str(Status.PENDING)]],
    )
    for show_id, status, seats, count, revenue in cursor.fetchall():
        figures = by_id[show_id]
        if status == Status.CONFIRMED:
            figures.sold = int(seats)
            figures.revenue = revenue or Decimal("0.00")
        elif status == Status.HELD:
            figures.held = int(seats)
        else:
            figures.pending = int(count)


def _failures(cursor, ids: list[int], by_id: dict[int, ShowFigures]) -> None:
    cursor.execute(
        f"SELECT show_id, failure_reason, count(*) FROM {_BOOKING} "  # noqa: S608  # nosec B608
        "WHERE show_id = ANY(%s) AND status = %s GROUP BY show_id, failure_reason",
        [ids, str(Status.FAILED)],
    )
    for show_id, reason, count in cursor.fetchall():
        by_id[show_id].failures[reason] = count


# Decided bookings of the scope: every status a decision leads to.
_DECIDED = [str(s) for s in (Status.CONFIRMED, Status.FAILED, Status.HELD, Status.CANCELLED, Status.EXPIRED)]


def _decided_per_minute(cursor, ids: list[int]) -> list[tuple[datetime, int]]:
    """Decisions per minute over the RATE_WINDOW_MINUTES up to the scope's last decision
    (the shows' sale may be over: the window follows it), zeros filled in by the database."""
    cursor.execute(
        f"WITH d AS (SELECT date_trunc('minute', decided_at) AS minute FROM {_BOOKING} "  # noqa: S608  # nosec B608
        "WHERE show_id = ANY(%s) AND status = ANY(%s) AND decided_at IS NOT NULL), "
        "last AS (SELECT max(minute) AS m FROM d), "
        "counts AS (SELECT minute, count(*) AS n FROM d, last WHERE minute > last.m - make_interval(mins => %s) "
        "GROUP BY minute) "
        "SELECT g.minute, COALESCE(c.n, 0) FROM last, "
        "generate_series(last.m - make_interval(mins => %s - 1), last.m, interval '1 minute') AS g(minute) "
        "LEFT JOIN counts c ON c.minute = g.minute ORDER BY g.minute",
        [ids, _DECIDED, RATE_WINDOW_MINUTES, RATE_WINDOW_MINUTES],
    )
    return [(minute, int(n)) for minute, n in cursor.fetchall() if minute is not None]


_WAIT = "extract(epoch FROM decided_at - created_at)"


def _latency(cursor, ids: list[int]) -> tuple[dict[str, float | None], int]:
    """Acceptance-to-decision percentiles (continuous, in ms) of the scope's decided bookings."""
    cursor.execute(
        f"SELECT count(*), percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY {_WAIT}) "  # noqa: S608  # nosec B608
        f"FROM {_BOOKING} WHERE show_id = ANY(%s) AND status = ANY(%s) AND decided_at IS NOT NULL",
        [ids, _DECIDED],
    )
    count, percentiles = cursor.fetchone()
    if not count:
        return {"p50": None, "p95": None, "p99": None}, 0
    p50, p95, p99 = (float(p) * 1000 for p in percentiles)
    return {"p50": p50, "p95": p95, "p99": p99}, int(count)
