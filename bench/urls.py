"""The service's URLs plus the benchmark's authenticated no-op (bench.settings only)."""

from django.urls import path
from rest_framework.response import Response

from booking_api import urls as service_urls
from booking_api.views.common import BaseApi


class BenchNoopApi(BaseApi):
    """Authenticated (JWT), throttled and rendered like every API view; does nothing else."""

    swagger_schema = None

    def get(self, request):
        return Response({"user": request.user.pk})


# First: the service's URLs end with a catch-all 404.
urlpatterns = [path("bench/noop", BenchNoopApi.as_view()), *service_urls.urlpatterns]

handler400 = service_urls.handler400
handler403 = service_urls.handler403
handler404 = service_urls.handler404
handler500 = service_urls.handler500
