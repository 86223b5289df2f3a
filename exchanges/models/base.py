"""What every record shares: a UUID, creation and update times; the largest count."""
import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..choices import (
    OPEN,
)


MAX_COUNT = 2_147_483_647
OPEN_STATUS_VALUES = sorted(str(status) for status in OPEN)


def refuse_future_date(errors, field, value):
    if value is not None and value > timezone.localdate():
        errors[field] = [_("Must not be in the future.")]


class TimestampedModel(models.Model):
    """Every object carries a UUID and its creation and last-update times (API.md)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    class Meta:
        abstract = True
