"""Client examples. Each file is a standalone script (standard library only) to copy; the
test harness imports book_tickets' polling rules so that tests poll as the example does."""
