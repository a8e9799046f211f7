"""Domain services: every write of the booking domain goes through one of these."""
