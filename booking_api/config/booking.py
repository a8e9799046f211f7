"""The booking and selling settings (read by settings.py with `from .booking import *`):
the per-show queue, its drain and recovery, retention, and the selling rules (currency,
prices, per-user limits). Every one is read from the environment, with a default."""

from environ import Env as _Env

from booking_api.config.envfile import load_env_file as _load_env_file

# Private names: settings.py star-imports every public one of this module.
_env = _Env()
# The .env, as settings.py reads it (real environment variables win); reading it twice is harmless.
_load_env_file()

# --- Bookings ----------------------------------------------------------------------------

BOOKING_MAX_SEATS = _env.int("BOOKING_MAX_SEATS", default=10)
# Seconds a client is told to wait before polling a pending booking again.
BOOKING_POLL_RETRY_AFTER = _env.int("BOOKING_POLL_RETRY_AFTER", default=1)
# A booking further back is told to wait its expected turn (queue position / this estimate
# of a show's decisions per second), up to the cap, so that it polls less (core/polling.py).
BOOKING_POLL_DECISIONS_PER_SECOND = _env.float("BOOKING_POLL_DECISIONS_PER_SECOND", default=500.0)
BOOKING_POLL_RETRY_AFTER_MAX = _env.int("BOOKING_POLL_RETRY_AFTER_MAX", default=10)
# A queue position is counted one booking ahead at a time: this bounds what a submission or
# a poll pays in a deep backlog (positions past it read as this value). The default is where
# the Retry-After above stops growing (10 s x 500/s).
BOOKING_QUEUE_POSITION_LIMIT = _env.int("BOOKING_QUEUE_POSITION_LIMIT", default=5000)
# Bookings decided per database transaction by the per-show drain.
BOOKING_DECIDE_BATCH = _env.int("BOOKING_DECIDE_BATCH", default=500)
# The per-show Redis lock expires on its own if its holder dies; the holder extends it
# before every batch, so it only needs to outlive one batch.
BOOKING_LOCK_TIMEOUT = _env.int("BOOKING_LOCK_TIMEOUT", default=30)
# A drain that finds its show empty waits this long for the next booking before it lets go
# (only while no other show's wake-up is queued): during a sale the bookings then join the
# running drain instead of each publishing a wake-up and running a task of its own.
BOOKING_DRAIN_LINGER_MS = _env.int("BOOKING_DRAIN_LINGER_MS", default=250)
# A drain that has held its worker this long while another show's wake-up waits queues its
# show again and lets go, so that a show fed without pause cannot starve the others.
BOOKING_DRAIN_TURN_SECONDS = _env.float("BOOKING_DRAIN_TURN_SECONDS", default=1.0)
# A drain's turn claims up to this many ready shows of its queue and decides one batch of
# each in ONE transaction: with many shows selling at once, a round of the line costs a few
# transactions instead of one per show (1: one show per transaction).
BOOKING_DRAIN_SHOWS_PER_TURN = _env.int("BOOKING_DRAIN_SHOWS_PER_TURN", default=32)
# A booking still pending this long after acceptance is re-queued by the recovery job.
BOOKING_RECOVERY_GRACE_SECONDS = _env.int("BOOKING_RECOVERY_GRACE_SECONDS", default=10)
BOOKING_RECOVERY_INTERVAL_SECONDS = _env.float("BOOKING_RECOVERY_INTERVAL_SECONDS", default=5.0)
# A booking whose decision raised this many times is failed instead of blocking its show.
BOOKING_MAX_DECIDE_ATTEMPTS = _env.int("BOOKING_MAX_DECIDE_ATTEMPTS", default=5)
# Retention: the bookings of shows that started more than this many days ago (a year: a
# customer's recent history and a season's reports stay) are deleted with their seats by
# an hourly job, BOOKING_RETENTION_BATCH per transaction; 0 keeps them all.
BOOKING_RETENTION_DAYS = _env.int("BOOKING_RETENTION_DAYS", default=365)
BOOKING_RETENTION_BATCH = _env.int("BOOKING_RETENTION_BATCH", default=5000)

# --- Selling ----------------------------------------------------------------------------
# One currency per deployment (ISO 4217), on shows and bookings.
BOOKING_CURRENCY = _env.str("BOOKING_CURRENCY", default="EUR")
# Added to a ticket type's standard price on a premium seat when the show lists no price
# for that pair (core/pricing.py). A string, so the Decimal is exact.
BOOKING_PREMIUM_SURCHARGE = _env.str("BOOKING_PREMIUM_SURCHARGE", default="2.00")
# A user's live seats in one show never exceed this: the booking that would is failed
# (`limit_exceeded`) by the decider, in order with every other decision of the show.
BOOKING_MAX_SEATS_PER_USER_PER_SHOW = _env.int("BOOKING_MAX_SEATS_PER_USER_PER_SHOW", default=10)
# A user has at most this many bookings pending at once: more is a 429 `too_many_pending`.
BOOKING_MAX_PENDING_PER_USER = _env.int("BOOKING_MAX_PENDING_PER_USER", default=5)

# --- Tickets ----------------------------------------------------------------------------
# How long a browser may keep a ticket's QR code image (seconds): it never changes, and the
# holder reopens it at the door, perhaps offline. `private`: no shared cache stores it.
TICKET_QR_MAX_AGE = _env.int("TICKET_QR_MAX_AGE", default=86400)

# --- Holds (CONTRACT "Holds, payment, tickets, admission") --------------------------------
# The default of a new show's `payment_required`: such a show sells in two steps, a won
# booking is `held` until paid. Off, so that a deployment that takes no payment sells as v1.
BOOKING_PAYMENT_REQUIRED = _env.bool("BOOKING_PAYMENT_REQUIRED", default=False)
# How long a held booking keeps its seats unpaid.
BOOKING_HOLD_MINUTES = _env.float("BOOKING_HOLD_MINUTES", default=10.0)
# How long a waiting-list offer stays open (core/services/waitlist.py): a customer who was
# not at the screen when the seats came free needs a moment to notice; past it the seats
# pass to the next entry. By default as long as a hold.
WAITLIST_OFFER_MINUTES = _env.float("WAITLIST_OFFER_MINUTES", default=BOOKING_HOLD_MINUTES)
# How often the hold expiry job runs: an unpaid hold's seats are free within about this
# long after its deadline. The deadline itself is a PostgreSQL column, so the job may run
# anywhere, late or twice.
BOOKING_HOLD_SWEEP_SECONDS = _env.float("BOOKING_HOLD_SWEEP_SECONDS", default=2.0)

# --- Payment (CONTRACT "Holds, payment, tickets, admission"; README "Payment") -------------
# `fake` (development and tests: the contract's tok_* tokens) or the dotted path of a class
# implementing core.payments.base.PaymentProvider.
PAYMENT_PROVIDER = _env.str("PAYMENT_PROVIDER", default="fake")
# The fake provider takes no money: without DEBUG it charges only when this says so (a
# staging site), so that a production that forgot to configure a provider cannot give
# tickets away (settings.py refuses to start one that sells paying shows by default).
PAYMENT_FAKE_ALLOWED = _env.bool("PAYMENT_FAKE_ALLOWED", default=False)
# The provider's webhooks are HMAC-signed with this; empty refuses every webhook. Without
# DEBUG a template or short value stops the start (settings.py).
PAYMENT_WEBHOOK_SECRET = _env.str("PAYMENT_WEBHOOK_SECRET", default="")
# A webhook signed longer ago than this (or that far in the future) is refused: a replay.
PAYMENT_WEBHOOK_TOLERANCE_SECONDS = _env.int("PAYMENT_WEBHOOK_TOLERANCE_SECONDS", default=300)
# The fake's asynchronous tokens are decided this long after the charge, then POSTed to
# this URL (this service's own webhook) by a Celery worker.
PAYMENT_FAKE_WEBHOOK_DELAY_SECONDS = _env.float("PAYMENT_FAKE_WEBHOOK_DELAY_SECONDS", default=1.0)
PAYMENT_FAKE_WEBHOOK_URL = _env.str(
    "PAYMENT_FAKE_WEBHOOK_URL", default=f"http://127.0.0.1:{_env.int('PORT', default=8000)}/api/v1/payments/webhook"
)
# A payment still unsettled (or a refund not done) this long is looked up at the provider by
# the reconciliation job, which runs every PAYMENT_RECONCILE_INTERVAL_SECONDS: a crash between
# the provider's answer and applying it, or a lost webhook, ends confirmed or refunded.
PAYMENT_RECONCILE_AFTER_SECONDS = _env.float("PAYMENT_RECONCILE_AFTER_SECONDS", default=30.0)
PAYMENT_RECONCILE_INTERVAL_SECONDS = _env.float("PAYMENT_RECONCILE_INTERVAL_SECONDS", default=10.0)
# A paid booking cancelled by its user is refunded up to this long before its show starts;
# later the cancel is refused (409 refund_window_closed). A cancelled show refunds always.
REFUND_CUTOFF_MINUTES = _env.float("REFUND_CUTOFF_MINUTES", default=60.0)

# --- Partner webhooks (core/services/partner_events.py) ---------------------------------
# One HTTP attempt waits at most this long (connect, send, read): a slow partner must not
# hold a worker process.
PARTNER_WEBHOOK_TIMEOUT_SECONDS = _env.float("PARTNER_WEBHOOK_TIMEOUT_SECONDS", default=5.0)
# A delivery failing this many times is given up, so that the booking's next event can go.
PARTNER_WEBHOOK_MAX_ATTEMPTS = _env.int("PARTNER_WEBHOOK_MAX_ATTEMPTS", default=10)
# Retries wait base x 2^(attempt-1) seconds, capped, with jitter (half fixed, half random):
# about 25 minutes over the default 10 attempts. The cap stays below the Redis broker's
# visibility timeout (CELERY_VISIBILITY_TIMEOUT), since a countdown sits unacked in a worker.
PARTNER_WEBHOOK_RETRY_BASE_SECONDS = _env.float("PARTNER_WEBHOOK_RETRY_BASE_SECONDS", default=2.0)
PARTNER_WEBHOOK_RETRY_MAX_SECONDS = _env.float("PARTNER_WEBHOOK_RETRY_MAX_SECONDS", default=300.0)
# An endpoint whose attempts failed this many times in a row, or that has failed without a
# success for this long, is paused: nothing is sent until staff resume it (its events are
# kept and go out in order then), so a dead partner is not retried for ever.
PARTNER_WEBHOOK_PAUSE_AFTER_FAILURES = _env.int("PARTNER_WEBHOOK_PAUSE_AFTER_FAILURES", default=20)
PARTNER_WEBHOOK_PAUSE_AFTER_SECONDS = _env.int("PARTNER_WEBHOOK_PAUSE_AFTER_SECONDS", default=3600)
# How often beat sweeps for deliveries that are due and not queued (a lost message, a worker
# killed mid-attempt, a retry longer than a countdown can carry).
PARTNER_WEBHOOK_SWEEP_SECONDS = _env.float("PARTNER_WEBHOOK_SWEEP_SECONDS", default=10.0)
