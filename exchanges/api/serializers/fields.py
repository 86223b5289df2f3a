"""What every serializer here shares: refusing unknown and read-only fields, and the
field kinds the API uses (ids, counts, timestamps with their offset, who recorded a row)."""

import pycountry
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ... import policy
from ...filters import NO_OFFSET, lacks_offset
from ...models import (
    MAX_COUNT,
    DetaineeGroup,
)


#: Upper bounds on free text, so one request cannot store megabytes in a field.
LONG_TEXT = 20_000
MEDIUM_TEXT = 5_000

COUNTRY_CODES = frozenset(country.alpha_2 for country in pycountry.countries) | {"XK"}


class StrictFieldsMixin:
    """Refuse fields the resource does not have, instead of silently dropping them.

    Read-only fields may be sent back unchanged (a GET body PUT back works), but a
    read-only field named in `refuse_changes_to` with a different value is refused:
    a partner who sends `status` must learn it did not change the status.
    """

    refuse_changes_to = {}

    def to_internal_value(self, data):
        if isinstance(data, dict):
            errors = {}
            for name in data:
                if name not in self.fields:
                    errors[name] = [_("Unknown field.")]
                elif name in self.refuse_changes_to:
                    current = getattr(self.instance, name, None) if self.instance is not None else None
                    if current is not None:  # compared as the API writes it (a date as "2022-05-17")
                        current = self.fields[name].to_representation(current)
                    if data[name] != current:
                        errors[name] = [self.refuse_changes_to[name]]
            if errors:
                raise serializers.ValidationError(errors)
            data = self._null_as_empty(data)
        return super().to_internal_value(data)

    def _null_as_empty(self, data):
        """An optional text or list sent as null is taken as empty ("the rest may be
        omitted: empty or null"): clients generated in many languages send null for
        what they leave unset. A field that keeps null as its own value is left alone."""
        empty = {}
        for name, value in data.items():
            field = self.fields.get(name)
            if value is not None or field is None or field.read_only or field.allow_null:
                continue
            if isinstance(field, serializers.CharField) and field.allow_blank:
                empty[name] = ""
            elif isinstance(field, (serializers.ListField, serializers.ManyRelatedField)) and field.allow_empty:
                empty[name] = []
        return {**data, **empty} if empty else data


def uuid_related(queryset, **kwargs):
    return serializers.PrimaryKeyRelatedField(queryset=queryset, pk_field=serializers.UUIDField(), **kwargs)


class VisibleGroupField(serializers.PrimaryKeyRelatedField):
    """A detainee group the caller may see; any other id is "does not exist" (400)."""

    def get_queryset(self):
        request = self.context.get("request")
        if request is None:
            return DetaineeGroup.objects.none()
        return policy.groups_visible_to(request.user)


def recorded_by_party_field():
    return serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, pk_field=serializers.UUIDField(),
        help_text="The party whose API client recorded it (null: staff); only that party may change it.",
    )  # fmt: skip


class OffsetDateTimeField(serializers.DateTimeField):
    """A timestamp with its offset (`Z` or `+03:00`): one without is ambiguous by hours, so
    it is refused (400), never guessed."""

    def to_internal_value(self, value):
        parsed = super().to_internal_value(value)
        if lacks_offset(value):
            raise serializers.ValidationError(NO_OFFSET)
        return parsed


def count_field(**kwargs):
    return serializers.IntegerField(min_value=0, max_value=MAX_COUNT, **kwargs)


class ActorSerializer(serializers.Serializer):
    """Who did something: a staff login or an API client (null where a field allows it:
    the tracker itself). Describes the JSON of `RecordedByField` and `acknowledged_by`."""

    type = serializers.ChoiceField(choices=[("staff", "staff"), ("api_client", "api_client")])
    id = serializers.CharField(help_text="The API client's id (a UUID), or the staff login's id.")
    name = serializers.CharField(help_text="The API client's name, or the staff login's username.")


@extend_schema_field(ActorSerializer)
class RecordedByField(serializers.Field):
    """Who recorded a row: a staff user, an API client, or the system (null)."""

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, allow_null=True, **kwargs)

    def to_representation(self, instance):
        if instance.recorded_by_client_id:
            client = instance.recorded_by_client
            return {"type": "api_client", "id": str(client.pk), "name": client.name}
        if instance.recorded_by_user_id:
            user = instance.recorded_by_user
            return {"type": "staff", "id": str(user.pk), "name": user.get_username()}
        return None


class WholeItemMixin:
    """List items are whole objects even inside a PATCH: DRF's `partial` would otherwise
    let an item without its `party` or `group` through, and lists replace what is stored."""

    def run_validation(self, data=serializers.empty):
        if isinstance(data, dict):
            missing = [
                name for name, field in self.fields.items()
                if field.required and not field.read_only and name not in data
            ]
            if missing:
                raise serializers.ValidationError({name: [_("This field is required.")] for name in missing})
        return super().run_validation(data)
