"""Partner systems (API clients) and the responses kept for their retried POSTs."""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .base import TimestampedModel
from .parties import Party


class ApiClient(TimestampedModel):
    """A partner system calling the API on behalf of one party.

    The token is shown once at creation and stored only as a SHA-256 digest: tokens
    carry 256 bits of randomness, so a leaked database does not leak working tokens.
    """

    name = models.CharField(_("name"), max_length=200)
    party = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="api_clients", verbose_name=_("party"))
    read_only = models.BooleanField(_("read-only"), default=False)
    token_prefix = models.CharField(_("token prefix"), max_length=16, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("API client")
        verbose_name_plural = _("API clients")
        constraints = [
            models.CheckConstraint(condition=Q(token_hash__regex=r"^[0-9a-f]{64}$"), name="api_client_hash_form"),
        ]

    def __str__(self):
        return f"{self.name} ({self.party.short_name or self.party.name})"

    @property
    def is_active(self):
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    # The object DRF puts on request.user for a client: it is authenticated, not staff.
    is_authenticated = True
    is_staff = False
    is_anonymous = False


class IdempotencyKey(models.Model):
    """The first response to a POST sent with an `Idempotency-Key`, replayed for 24 hours.

    `lease_until` marks a request still running; a key whose lease ran out without a
    response (the process died, so its transaction rolled back) may be taken over.
    """

    id = models.BigAutoField(primary_key=True)
    owner = models.CharField(max_length=80)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)

    class Meta:
        verbose_name = _("idempotency key")
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="idempotency_key_unique")]
