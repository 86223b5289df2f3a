"""The change log behind `GET /api/v1/changes/`: one row per create, update, delete of a
record a partner may copy, and per loss of access (`removed`).

Order and safety (PostgreSQL): each row carries `txid`, the id of the transaction that
wrote it (a trigger, migration 0012). The feed hands out rows ordered by (txid, id) and
only below the oldest transaction still in flight (`pg_snapshot_xmin`), so a row that
commits later always sorts after every cursor already handed out. On SQLite writers take
turns, `txid` stays 0 and `id` alone is commit order.
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
    txid = models.BigIntegerField(default=0, editable=False)
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
        indexes = [models.Index(fields=["txid", "id"], name="change_feed_order")]

    def __str__(self):
        return f"{self.object_type} {self.object_id} {self.action}"
