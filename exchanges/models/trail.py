"""The audit trail and the access log: written once, never changed or deleted, and
chained (each sealed entry's hash covers the one before it: `exchanges.chain`)."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .negotiations import Negotiation


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError(f"The {self.model._meta.verbose_name_plural} is append-only.")

    def delete(self):
        raise PermissionError(f"The {self.model._meta.verbose_name_plural} is append-only.")


class AppendOnlyModel(models.Model):
    """Rows written once and never changed or deleted: the model and its queryset refuse,
    and on PostgreSQL a trigger (migrations 0003 and 0008) refuses too."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError(f"The {self._meta.verbose_name_plural} is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError(f"The {self._meta.verbose_name_plural} is append-only.")


class ChainedModel(AppendOnlyModel):
    """An append-only row that the sealer (`exchanges.chain.seal`) later gives its place in
    a hash chain: `seq` (1, 2, 3... without gaps, in the order rows were sealed) and
    `hash` = sha256(the previous row's hash + this row's canonical content). Writers leave
    both empty; the sealer fills them exactly once (on PostgreSQL the append-only trigger
    allows that one update and nothing else). `verify_audit` recomputes the chain."""

    seq = models.BigIntegerField("chain position", null=True, blank=True, editable=False)
    hash = models.CharField("chain hash", max_length=64, null=True, blank=True, editable=False)

    class Meta:
        abstract = True


class AuditEntry(ChainedModel):
    """Who changed what, when, from which request, with the values before and after.

    Append-only: the model, its queryset and (on PostgreSQL) a trigger refuse updates and
    deletes. Actors are kept as a label as well as an id, so the entry stays readable if
    the user or client is later removed; nothing here cascades.
    """

    class Action(models.TextChoices):
        CREATE = "create", _("Created")
        UPDATE = "update", _("Changed")
        DELETE = "delete", _("Deleted")
        READ = "read", _("Read")

    id = models.BigAutoField(primary_key=True)
    occurred_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True, editable=False)
    action = models.CharField(_("action"), max_length=8, choices=Action.choices)
    model = models.CharField(_("record"), max_length=64, db_index=True)
    object_id = models.CharField(_("object id"), max_length=64)
    object_repr = models.CharField(_("object"), max_length=300)
    negotiation_id = models.UUIDField(_("negotiation"), null=True, blank=True, db_index=True)
    actor_type = models.CharField(_("actor type"), max_length=16)  # staff | api_client | system
    actor_id = models.CharField(_("actor id"), max_length=64, blank=True)
    actor_label = models.CharField(_("who"), max_length=200)
    channel = models.CharField(_("via"), max_length=100, blank=True)
    request_id = models.CharField(_("request"), max_length=64, blank=True, db_index=True)
    changes = models.JSONField(_("changes"), default=dict)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit trail")
        indexes = [
            models.Index(fields=["model", "object_id"], name="audit_object"),
            models.Index(fields=["id"], condition=models.Q(seq__isnull=True), name="audit_unsealed"),
            models.Index(fields=["-occurred_at", "-id"], name="audit_recent"),  # the admin's list
        ]
        constraints = [models.UniqueConstraint(fields=["seq"], name="audit_seq_unique")]

    def __str__(self):
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.actor_label} {self.get_action_display()} {self.object_repr}"



class AccessLogEntry(ChainedModel):
    """One staff read of a `staff_only` negotiation: who, which, when, from where, how.

    Append-only like the audit trail (model, queryset and, on PostgreSQL, a trigger).
    """

    class Channel(models.TextChoices):
        PAGE = "page", _("Admin page")
        API = "api", _("API")
        EXPORT = "export", _("Export")

    id = models.BigAutoField(primary_key=True)
    occurred_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False, null=True,
        related_name="+", verbose_name=_("staff login"),
    )
    user_label = models.CharField(_("who"), max_length=150)
    negotiation = models.ForeignKey(
        Negotiation, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", verbose_name=_("negotiation"),
    )
    negotiation_repr = models.CharField(_("negotiation"), max_length=300)
    address = models.GenericIPAddressField(_("address"), null=True, blank=True)
    channel = models.CharField(_("how"), max_length=8, choices=Channel.choices)
    request_id = models.CharField(_("request"), max_length=64, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("access log entry")
        verbose_name_plural = _("access log")
        indexes = [
            models.Index(fields=["negotiation", "-occurred_at"], name="access_log_negotiation"),
            models.Index(fields=["id"], condition=models.Q(seq__isnull=True), name="access_log_unsealed"),
            models.Index(fields=["-occurred_at", "-id"], name="access_log_recent"),  # the admin's list
        ]
        constraints = [models.UniqueConstraint(fields=["seq"], name="access_log_seq_unique")]

    def __str__(self):
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.user_label} {self.negotiation_repr}"


class TrailHead(models.Model):
    """The last sealed link of each chain (`audit`, `access`), kept apart from the rows so
    that removing rows from the end of a chain, or all of them, shows: the head still
    names a position and hash the table no longer holds. Only moves forward (on
    PostgreSQL a trigger refuses to lower it or delete it). Operators copy it elsewhere
    (`verify_audit` prints it) to catch a rewrite of rows and head together."""

    chain = models.CharField("chain", max_length=16, primary_key=True)
    seq = models.BigIntegerField("last sealed position")
    hash = models.CharField("last sealed hash", max_length=64)
    sealed_at = models.DateTimeField("sealed at", default=timezone.now)

    class Meta:
        verbose_name = _("trail head")
        verbose_name_plural = _("trail heads")

    def __str__(self):
        return f"{self.chain}:{self.seq}:{self.hash}"
