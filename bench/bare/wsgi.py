import os

from django.core.wsgi import get_wsgi_application

# The benchmark's environment names the service's settings: this project has its own.
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.bare.settings"

application = get_wsgi_application()
