"""What every record shares: a UUID, creation and update times; the largest count."""
import datetime
import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..choices import AGREED_STATUSES, OPEN

MAX_COUNT = 2_147_483_647
OPEN_STATUS_VALUES = sorted(str(status) for status in OPEN)
AGREED_STATUS_VALUES = sorted(str(status) for status in AGREED_STATUSES)


#: The earliest date the record takes (an earlier one is a typo, not history).
EARLIEST = datetime.date(1900, 1, 1)
#: How far ahead a planned date may lie (a next step due in 9999 is a typo too).
PLANNING_YEARS = 10


def refuse_future_date(errors, field, value):
    """A date something happened: not in the future, not before 1900."""
    if value is None:
        return
    if value > timezone.localdate():
        errors[field] = [_("Must not be in the future.")]
    elif value < EARLIEST:
        errors[field] = [_("Must not be before %(day)s.") % {"day": EARLIEST.isoformat()}]


def refuse_unlikely_plan(errors, field, value):
    """A date something is planned for: from 1900 to ten years ahead."""
    if value is None:
        return
    today = timezone.localdate()
    latest = today.replace(year=today.year + PLANNING_YEARS, day=min(today.day, 28))
    if not EARLIEST <= value <= latest:
        errors[field] = [
            _("Must be between %(first)s and %(last)s.") % {"first": EARLIEST.isoformat(), "last": latest.isoformat()}
        ]


class TimestampedModel(models.Model):
    """Every object carries a UUID and its creation and last-update times (API.md)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    class Meta:
        abstract = True
