"""The waiting list of sold-out shows: who waits for how many seats, first come first served."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.models.bookings import Booking
from core.models.catalogue import Show


class WaitlistEntry(models.Model):
    """A user waiting for `quantity` seats of a show. Freed seats are offered to the waiting
    entries in `id` order (core/services/waitlist.py): an entry is inserted under its show's
    lock, so the id order is the order in which the entries were committed.

    Only the entry's own moves are stored (waiting -> offered, waiting -> left, waiting ->
    closed). Whether an offer was taken (`accepted`) or not (`lapsed`) is its booking's
    status: the payment, the confirm, the expiry and the cancel that settle that booking then
    need no second write, and the two can never disagree.
    """

    class Status(models.TextChoices):
        WAITING = "waiting"
        # `booking` is the held booking offered to it.
        OFFERED = "offered"
        # The user left the list.
        LEFT = "left"
        # The show was cancelled while the entry waited: no offer will come.
        CLOSED = "closed"

    show = models.ForeignKey(Show, on_delete=models.PROTECT, related_name="waitlist_entries", db_index=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="waitlist_entries", db_index=False
    )
    quantity = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING)
    booking = models.OneToOneField(
        Booking, on_delete=models.CASCADE, null=True, blank=True, related_name="waitlist_entry"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    offered_at = models.DateTimeField(null=True, blank=True)
    # When it left the list or the list closed.
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One place in the queue per user and show: joining twice would take two turns.
            models.UniqueConstraint(
                fields=["user", "show"], condition=Q(status="waiting"), name="waitlist_one_waiting_per_user_show"
            ),
            # The upper bound is BOOKING_MAX_SEATS, a setting: a constraint would freeze its
            # value of the day in a migration, so the service checks it.
            models.CheckConstraint(condition=Q(quantity__gte=1), name="waitlist_quantity_positive"),
            # An offered entry names its offer; no other entry has one.
            models.CheckConstraint(
                condition=Q(status="offered", booking__isnull=False) | (~Q(status="offered") & Q(booking__isnull=True)),
                name="waitlist_offered_has_booking",
            ),
        ]
        indexes = [
            # The queue of a show: its waiting entries in order (offers and positions).
            models.Index(fields=["show", "id"], condition=Q(status="waiting"), name="waitlist_waiting_show_idx"),
            # A user's entries, newest first (GET /waitlist).
            models.Index(fields=["user", "-created_at"], name="waitlist_user_created_idx"),
            # Retention deletes the entries of long-past shows.
            models.Index(fields=["show"], name="waitlist_show_idx"),
        ]

    def __str__(self) -> str:
        return f"waitlist {self.pk} ({self.status})"

    # What the API shows: the stored statuses, an offer told apart by its booking, and a
    # waiting entry whose show has started `closed`.
    PUBLIC_STATUSES = ("waiting", "offered", "accepted", "lapsed", "left", "closed")

    @property
    def public_status(self) -> str:
        """`offered` while the offer is held; `accepted` once it was confirmed (even if
        cancelled later); `lapsed` when it expired or was cancelled untaken; a waiting entry
        of a show that has started is `closed`."""
        if self.status == self.Status.OFFERED and self.booking is not None:
            if self.booking.status == Booking.Status.HELD:
                return "offered"
            return "accepted" if self.booking.confirmed_at is not None else "lapsed"
        if self.status == self.Status.WAITING and self.show.starts_at <= timezone.now():
            return "closed"
        return str(self.status)

    @property
    def offer_expires_at(self):
        """The deadline of an offer still open, else None."""
        return self.booking.hold_expires_at if self.public_status == "offered" and self.booking else None

    @property
    def position(self) -> int | None:
        """1 for the next waiting entry of its show, 2 for the one after, ...; None unless
        waiting. Read from `entries_ahead`, which the selectors annotate (core.selectors)."""
        ahead = getattr(self, "entries_ahead", None)
        return ahead + 1 if ahead is not None and self.public_status == "waiting" else None
