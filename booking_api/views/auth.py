"""Signup, login, token refresh and logout (simplejwt), and the current user."""

from drf_yasg.utils import swagger_auto_schema
from rest_framework import status
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer

from booking_api.openapi import errors
from booking_api.permissions import CredentialsInBody
from booking_api.serializers.auth import (
    LoginInputSerializer,
    MeOutputSerializer,
    RefreshInputSerializer,
    SignupInputSerializer,
    TokenPairOutputSerializer,
    UserOutputSerializer,
    me_representation,
)
from booking_api.throttles import AuthThrottle, LoginUsernameThrottle, forgive_login_attempt
from booking_api.views.common import BaseApi
from core.services.auth import token_logout, token_refresh
from core.services.users import user_signup

TAGS = ["auth"]


class _CredentialsApi(BaseApi):
    authentication_classes = [CredentialsInBody]
    permission_classes = [AllowAny]


class UserSignupApi(_CredentialsApi):
    throttle_classes = [AuthThrottle]

    @swagger_auto_schema(
        operation_id="auth_signup",
        tags=TAGS,
        security=[],
        request_body=SignupInputSerializer,
        responses={201: UserOutputSerializer, **errors(400, 429)},
    )
    def post(self, request):
        serializer = SignupInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_signup(**serializer.validated_data)
        return Response(UserOutputSerializer(user).data, status=status.HTTP_201_CREATED)


class UserLoginApi(_CredentialsApi):
    throttle_classes = [AuthThrottle, LoginUsernameThrottle]

    def check_throttles(self, request):
        try:
            super().check_throttles(request)
        except Throttled:
            # A refused attempt checked no password: not a failure of the username's.
            forgive_login_attempt(request)
            raise

    @swagger_auto_schema(
        operation_id="auth_login",
        tags=TAGS,
        security=[],
        request_body=LoginInputSerializer,
        responses={200: TokenPairOutputSerializer, **errors(400, 401, 429)},
    )
    def post(self, request):
        LoginInputSerializer(data=request.data).is_valid(raise_exception=True)
        # Wrong credentials raise AuthenticationFailed: a 401.
        serializer = TokenObtainPairSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # Only failed logins count against the username's limit.
        forgive_login_attempt(request)
        return Response(serializer.validated_data)


class TokenRefreshApi(_CredentialsApi):
    @swagger_auto_schema(
        operation_id="auth_refresh",
        tags=TAGS,
        security=[],
        request_body=RefreshInputSerializer,
        responses={200: TokenPairOutputSerializer, **errors(400, 401)},
    )
    def post(self, request):
        serializer = RefreshInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(token_refresh(refresh=serializer.validated_data["refresh"]))


class UserLogoutApi(_CredentialsApi):
    @swagger_auto_schema(
        operation_id="auth_logout",
        tags=TAGS,
        security=[],
        request_body=RefreshInputSerializer,
        responses={204: "Logged out: the refresh token is blacklisted.", **errors(400, 401)},
    )
    def post(self, request):
        serializer = RefreshInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token_logout(refresh=serializer.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserMeApi(BaseApi):
    permission_classes = [IsAuthenticated]

    @swagger_auto_schema(operation_id="auth_me", tags=TAGS, responses={200: MeOutputSerializer, **errors(401)})
    def get(self, request):
        return Response(me_representation(request.user))
