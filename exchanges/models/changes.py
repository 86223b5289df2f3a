"""The change log behind `GET /api/v1/changes/`: one row per create, update, delete of a
record a partner may copy, and per loss of access (`removed`).

Order and safety: a row is written without a `position`; once committed it is given the
next positions, in id order, by `exchanges.changes.seal` (one sealer at a time), and the
feed hands out only rows that have one, in `position` order. A row that commits later
is sealed later, so its position is above every cursor already handed out; nothing
waits on transactions elsewhere on the database server.
"""
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Change(models.Model):
    class Action(models.TextChoices):
        CREATED = "created", _("created")
        UPDATED = "updated", _("updated")
        DELETED = "deleted", _("deleted")
        REMOVED = "removed", _("removed (access lost)")

    class Audience(models.TextChoices):
        """Who may see a row whose object is gone or out of reach (deleted, removed)."""

        CURRENT = "", _("whoever may see the object now")
        PARTIES = "parties", _("the listed parties")
        ALL_BUT = "all_but", _("every party but the listed ones")

    id = models.BigAutoField(primary_key=True)
    position = models.BigIntegerField(null=True, blank=True, unique=True, editable=False)
    at = models.DateTimeField(default=timezone.now)
    object_type = models.CharField(max_length=32)
    object_id = models.UUIDField()
    action = models.CharField(max_length=16, choices=Action.choices)
    #: What decides who sees the row now: the negotiation (for it and what hangs off it)
    #: or the detainee group (for it and its figures); neither for parties (everyone).
    negotiation_id = models.UUIDField(null=True, blank=True)
    group_id = models.UUIDField(null=True, blank=True)
    audience_mode = models.CharField(max_length=8, choices=Audience.choices, blank=True, default="")
    #: Party ids as ",id,id," (a substring test reads the same on every database).
    audience = models.TextField(blank=True, default="")

    class Meta:
        verbose_name = _("change")
        verbose_name_plural = _("changes")
        # What the sealer has still to number.
        indexes = [models.Index(fields=["id"], name="change_unsealed", condition=models.Q(position__isnull=True))]

    def __str__(self):
        return f"{self.object_type} {self.object_id} {self.action}"
