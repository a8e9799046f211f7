"""The admin's login page, rate-limited like the API's login.

Its POSTs share the API's limits (per address: THROTTLE_AUTH, per username:
THROTTLE_LOGIN_USERNAME), so the admin is no side door for password guessing. A refused
attempt is never checked against the password; it gets the login page with the reason, as a
429 with Retry-After.
"""

import math

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from booking_api.throttles import AuthThrottle, LoginUsernameThrottle, forgive_login_attempt

# Where the form leaves the wait of a refused attempt for the view's status and header.
_WAIT_ATTR = "_booking_login_throttle_wait"


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    def clean(self):
        waits = [
            throttle.wait()
            for throttle in (AuthThrottle(), LoginUsernameThrottle())
            if not throttle.allow_request(self.request, None)
        ]
        if waits:
            # A refused attempt checked no password: not a failure of the username's.
            forgive_login_attempt(self.request)
            wait = math.ceil(max(waits))
            setattr(self.request, _WAIT_ATTR, wait)
            raise ValidationError(
                "Too many login attempts. Try again in %(seconds)s seconds.",
                code="throttled",
                params={"seconds": wait},
            )
        cleaned_data = super().clean()
        # Only failed logins count against the username's limit.
        forgive_login_attempt(self.request)
        return cleaned_data


admin.site.login_form = ThrottledAdminAuthenticationForm


def login(request, extra_context=None):
    """admin.site.login, answering 429 + Retry-After when the form refused a throttled attempt."""
    response = admin.site.login(request, extra_context)
    wait = getattr(request, _WAIT_ATTR, None)
    if wait is not None:
        response.status_code = 429
        response["Retry-After"] = str(wait)
    return response
