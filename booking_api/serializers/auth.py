"""Serializers of the auth routes: signup, login, refresh, logout and me."""

from rest_framework import serializers


class SignupInputSerializer(serializers.Serializer):
    username = serializers.RegexField(r"^[\w.@+-]+\Z", max_length=150)
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)


class UserOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()


class MeOutputSerializer(UserOutputSerializer):
    is_staff = serializers.BooleanField()


def me_representation(user) -> dict:
    """What MeOutputSerializer renders, built directly (GET /auth/me is the cheapest
    authenticated route; a serializer costs it more than its query). tests/test_api_auth.py
    keeps the two identical."""
    return {"id": user.id, "username": user.username, "email": user.email, "is_staff": user.is_staff}


class LoginInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class TokenPairOutputSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class RefreshInputSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=4096)
