"""`GET /me`: the user of the token, as the service's /auth/me answers it."""

from django.urls import path
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()
    is_staff = serializers.BooleanField()


class MeView(APIView):
    def get(self, request):
        return Response(MeSerializer(request.user).data)


urlpatterns = [path("me", MeView.as_view())]
