"""The Django admin for operators: the catalogue, bookings to search and inspect, and show
cancellation (through the same service as the API, behind a confirmation page).

Every catalogue write goes through the services the API uses, so the admin enforces the
same rules (a show with bookings is not moved, its end follows its start, a screen does not
shrink under held seats, a deactivated movie stops selling); a refusal is a form error.
"""

# Importing the modules registers their ModelAdmins.
from django.contrib import admin

from core.admin import bookings, catalogue, waitlist, webhooks  # noqa: F401

# The index links the box-office dashboard (core/admin/box_office.py, routed in booking_api/urls.py).
admin.site.index_template = "admin/core/index.html"
