"""Exports of the admin's lists that run as a background job (`exchanges.exports`).

A list of a million rows takes minutes to write, far past a web request's timeout: the
job keeps what the list was (which admin, its filters, search and sort as on screen, the
language) and who asked, a worker writes the file and counts its rows as it goes, and the
owner downloads it once it is complete. A file is written under a temporary name and
renamed only when complete, so a partial file is never offered as one.
"""
import uuid
from pathlib import Path

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def exports_dir():
    """Where export files are kept: `var/exports` (TRACKER_VAR_DIR)."""
    return Path(settings.VAR_DIR) / "exports"


class ExportJob(models.Model):
    """One "Export CSV" of an admin list, queued, written by a worker, then downloaded."""

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Being written")
        DONE = "done", _("Ready")
        FAILED = "failed", _("Failed")
        INTERRUPTED = "interrupted", _("Interrupted")

    #: States a job leaves on its own (the worker takes it, writes it).
    ACTIVE = (State.QUEUED, State.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("staff login")
    )
    #: Which admin list: "app_label.model_name" (e.g. "exchanges.negotiation").
    list_name = models.CharField(_("list"), max_length=100)
    #: The list's address query as on screen: filters, search and sort.
    query_string = models.TextField(_("filters"), blank=True)
    language = models.CharField(_("language"), max_length=16)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.QUEUED)
    rows_written = models.PositiveBigIntegerField(_("rows written"), default=0)
    rows_expected = models.PositiveBigIntegerField(_("rows expected"), null=True, blank=True)
    file_name = models.CharField(_("file name"), max_length=200)
    error = models.TextField(_("error"), blank=True)
    #: Where and in which request it was asked for: the access log of the rows it includes.
    address = models.GenericIPAddressField(_("address"), null=True, blank=True)
    request_id = models.CharField(_("request"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("asked at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    #: The worker's last sign of life (every few thousand rows): a running job silent for
    #: long is one whose worker died (`exports.mark_interrupted`).
    progress_at = models.DateTimeField(_("last progress"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    #: When its owner was told it finished (a message on their next list or exports page).
    notified_at = models.DateTimeField(_("notified at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["queued", "running", "done", "failed", "interrupted"]), name="export_job_state_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="export_job_by_user"),
            models.Index(fields=["state", "progress_at"], name="export_job_active", condition=Q(state__in=["queued", "running"])),
        ]

    def __str__(self):
        return self.file_name

    @property
    def path(self):
        """The complete file (only ever there once the job is done)."""
        return exports_dir() / f"{self.pk}.csv"

    @property
    def partial_path(self):
        """The file while it is written; renamed to `path` when complete."""
        return exports_dir() / f"{self.pk}.csv.part"

    @property
    def is_active(self):
        return self.state in self.ACTIVE
