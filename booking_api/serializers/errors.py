"""The error body every failure answers with (documentation only: exceptions.py builds it)."""

from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable error code.")
    message = serializers.CharField(help_text="Human-readable message.")
    # Free-form: field names map to lists of messages (nested for nested fields), and other
    # errors put what they need here ({"dependency": "database"}, {"booking": "<id>"}).
    details = serializers.JSONField(help_text="Field errors for validation failures; otherwise empty.")
