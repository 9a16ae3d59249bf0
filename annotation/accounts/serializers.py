"""Serializers of the API's ground floor: the one error body, the current user, personal tokens."""

from __future__ import annotations

from rest_framework import serializers

from ..models import ApiToken


class ErrorSerializer(serializers.Serializer):
    """The one error body of the API."""

    detail = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class TokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, style={"input_type": "password"}, trim_whitespace=False)
    name = serializers.CharField(max_length=100, default="api")


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(help_text="The raw token: shown once, store it now. Send as `Authorization: Bearer <token>`.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    is_staff = serializers.BooleanField()
    can_create_studies = serializers.BooleanField()
