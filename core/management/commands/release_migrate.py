"""The release step's `migrate`: every statement waits at most MIGRATE_LOCK_TIMEOUT for a lock.

A migration that alters or drops something on a busy table needs a strong lock; waiting
for it behind a long transaction would queue every request that touches the table behind
the migration, stalling the service for as long as that transaction lasts. With a
lock_timeout the migration gives up instead (PostgreSQL rolls back its transaction whole),
and the step tries again a little later, MIGRATE_ATTEMPTS times in all, then fails so that
the deploy stops with the old code still serving.
"""

import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, connection
from psycopg2 import errors


class Command(BaseCommand):
    help = "migrate with a lock_timeout (MIGRATE_LOCK_TIMEOUT), retried MIGRATE_ATTEMPTS times."

    def handle(self, *args, **options):
        lock_timeout, attempts = settings.MIGRATE_LOCK_TIMEOUT, settings.MIGRATE_ATTEMPTS
        # A connection option, so that it holds for every statement of every migration,
        # whichever connection Django opens for them.
        connection.close()
        db_options = connection.settings_dict.setdefault("OPTIONS", {})
        db_options["options"] = f"{db_options.get('options', '')} -c lock_timeout={lock_timeout}".strip()
        for attempt in range(1, attempts + 1):
            try:
                call_command("migrate", interactive=False, verbosity=options["verbosity"])
                return
            except OperationalError as exc:
                if not isinstance(exc.__cause__, errors.LockNotAvailable):
                    raise
                connection.close()
                if attempt == attempts:
                    raise CommandError(
                        f"migrate could not get its locks within lock_timeout={lock_timeout} in {attempts} "
                        "attempts: a long transaction holds a table it alters. Nothing was half-applied; "
                        "run the release again when it has ended."
                    ) from exc
                wait = min(2**attempt, 30)
                self.stderr.write(
                    f"migrate: a lock was not granted within lock_timeout={lock_timeout} (attempt {attempt} of "
                    f"{attempts}); rolled back, retrying in {wait} s"
                )
                time.sleep(wait)
