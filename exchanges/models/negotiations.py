"""Negotiations, who takes part in them, the groups they cover, their status history and
timeline."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..choices import (
    EventKind,
    NegotiationStatus,
    ParticipantRole,
    Priority,
    Visibility,
)
from .base import AGREED_STATUS_VALUES, OPEN_STATUS_VALUES, TimestampedModel, refuse_future_date, refuse_unlikely_plan
from .parties import DetaineeGroup, Party, Team, recorded_by_party_field


class ReferenceCounter(models.Model):
    """The last reference number handed out per year (NEG-2022-0007)."""

    year = models.PositiveIntegerField(primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("reference counter")


class Negotiation(TimestampedModel):
    """A negotiation over the release or exchange of detainee groups.

    `status` moves only through `StatusChange` rows written by
    `services.negotiation_change_status`. `last_activity_at` is the latest real-world
    time of a status change or event, or the start of `opened_on` while there are none.
    `stalled` and `stalled_since` are kept by the stall tracker.
    """

    reference = models.CharField(_("reference"), max_length=32, unique=True, editable=False)
    title = models.CharField(_("title"), max_length=300)
    summary = models.TextField(_("summary"), blank=True)
    status = models.CharField(
        _("status"), max_length=32, choices=NegotiationStatus.choices, default=NegotiationStatus.PROPOSED
    )
    priority = models.CharField(_("priority"), max_length=16, choices=Priority.choices, default=Priority.ROUTINE)
    visibility = models.CharField(
        _("visibility"), max_length=16, choices=Visibility.choices, default=Visibility.PARTICIPANTS
    )
    opened_on = models.DateField(_("opened on"), default=timezone.localdate)
    next_step = models.TextField(_("next step"), blank=True)
    next_step_due = models.DateField(_("next step due"), null=True, blank=True)
    last_activity_at = models.DateTimeField(_("last activity"), db_index=True)
    stalled = models.BooleanField(_("stalled"), default=False)
    agreed_at = models.DateTimeField(
        _("agreed at"), null=True, blank=True, editable=False, help_text=_("When it last reached “agreed”.")
    )
    activity_count = models.PositiveIntegerField(
        _("activities"), default=0, editable=False, help_text=_("Status changes, events and done handovers.")
    )
    handovers_recorded = models.PositiveIntegerField(
        _("handovers recorded"), default=0, editable=False, help_text=_("The last handover sequence number handed out.")
    )
    usual_gap = models.DurationField(
        _("usual gap"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("The median time between two of its activities: its own rhythm."),
    )
    stalled_since = models.DateTimeField(_("stalled since"), null=True, blank=True)
    created_by_party = models.ForeignKey(
        Party,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by party"),
        help_text=_("The party whose API client recorded it. Recording gives no access: only taking part does."),
    )
    party_ids = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="The participating parties' ids, kept by services._replace_participants so that "
        "visibility is a per-row check at any table size.",
    )
    watchers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="watched_negotiations",
        verbose_name=_("watched by"),
        help_text=_("Staff who are emailed when its status changes or it stalls."),
    )
    parties = models.ManyToManyField(Party, through="Participant", related_name="negotiations", verbose_name=_("parties"))
    groups = models.ManyToManyField(DetaineeGroup, through="CoveredGroup", related_name="negotiations", verbose_name=_("detainee groups"))
    teams = models.ManyToManyField(
        Team,
        blank=True,
        related_name="negotiations",
        verbose_name=_("teams"),
        help_text=_("The staff teams that work on it; a staff-only negotiation is seen only by them."),
    )
    case_officer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="cases",
        verbose_name=_("case officer"),
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("negotiation")
        verbose_name_plural = _("negotiations")
        permissions = [
            ("manage_access", _("Can change a negotiation's participants, visibility and teams")),
            ("see_all_staff_only", _("Can see every staff-only negotiation")),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=NegotiationStatus.values), name="negotiation_status_valid"),
            models.CheckConstraint(condition=Q(priority__in=Priority.values), name="negotiation_priority_valid"),
            models.CheckConstraint(
                condition=Q(visibility__in=Visibility.values), name="negotiation_visibility_valid"
            ),
            models.CheckConstraint(
                condition=Q(stalled=False, stalled_since__isnull=True) | Q(stalled=True, stalled_since__isnull=False),
                name="negotiation_stalled_since_matches",
            ),
            models.CheckConstraint(condition=Q(title__regex=r"\S"), name="negotiation_title_not_blank"),
        ]
        indexes = [
            # Lists walk (created_at, id), the cursor's order, and stop after a page.
            models.Index(fields=["-created_at", "-id"], name="negotiation_recent"),
            models.Index(fields=["updated_at", "id"], name="negotiation_sync"),
            # The admin's list, most recently active first, with its unique tie-breaker.
            models.Index(fields=["-last_activity_at", "-id"], name="negotiation_activity_order"),
            # The list filtered by a status (the dashboard's status links), in that order; its
            # capped count reads this index alone (a seq scan found 10,001 in_talks of a
            # million in 23-207 ms).
            models.Index(fields=["status", "-last_activity_at", "-id"], name="negotiation_status_activity"),
            # `?stalled=true` lists, newest first.
            models.Index(fields=["-created_at", "-id"], condition=Q(stalled=True), name="negotiation_stalled_recent"),
            # The stall scan reads open negotiations by silence and by due date.
            models.Index(fields=["last_activity_at"], condition=Q(status__in=OPEN_STATUS_VALUES), name="negotiation_open_silence"),
            models.Index(
                fields=["next_step_due"],
                condition=Q(status__in=OPEN_STATUS_VALUES, next_step_due__isnull=False),
                name="negotiation_open_due",
            ),
            # The scan's crossing of the wounded rule's days since agreement.
            models.Index(
                fields=["agreed_at"],
                condition=Q(status__in=AGREED_STATUS_VALUES, agreed_at__isnull=False),
                name="negotiation_agreed_since",
            ),
            # And, on PostgreSQL, the off-rhythm crossings: two expression indexes made by
            # migration 0016 (`RHYTHM_INDEX_SQL` in `tracker.services`).
        ]

    def __str__(self):
        return f"{self.reference} {self.title}"

    @property
    def progress(self):
        """Each releasing party's progress (`selectors.progress`; lists read it in SQL)."""
        from ..selectors import progress

        return progress(self)

    def clean(self):
        errors = {}
        refuse_future_date(errors, "opened_on", self.opened_on)
        refuse_unlikely_plan(errors, "next_step_due", self.next_step_due)
        if not (self.title or "").strip():
            errors["title"] = [_("This field may not be blank.")]
        if errors:
            raise ValidationError(errors)


class Participant(models.Model):
    """A party taking part in a negotiation, in one role."""

    id = models.BigAutoField(primary_key=True)
    negotiation = models.ForeignKey(Negotiation, on_delete=models.CASCADE, related_name="participants", verbose_name=_("negotiation"))
    party = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="participations", verbose_name=_("party"))
    role = models.CharField(_("role"), max_length=16, choices=ParticipantRole.choices)

    class Meta:
        ordering = ["id"]
        verbose_name = _("participant")
        verbose_name_plural = _("participants")
        constraints = [
            models.UniqueConstraint(fields=["negotiation", "party"], name="participant_one_role_per_party"),
            models.CheckConstraint(condition=Q(role__in=ParticipantRole.values), name="participant_role_valid"),
        ]
        indexes = [models.Index(fields=["party", "negotiation"], name="participant_party_negotiation")]

    def __str__(self):
        return f"{self.party} ({self.get_role_display()})"


class CoveredGroup(models.Model):
    """A detainee group a negotiation is about, with how many were proposed and released."""

    id = models.BigAutoField(primary_key=True)
    negotiation = models.ForeignKey(Negotiation, on_delete=models.CASCADE, related_name="covered_groups", verbose_name=_("negotiation"))
    group = models.ForeignKey(DetaineeGroup, on_delete=models.PROTECT, related_name="coverage", verbose_name=_("detainee group"))
    proposed_count = models.PositiveIntegerField(_("proposed"), null=True, blank=True)
    released_count = models.PositiveIntegerField(_("released"), null=True, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("covered group")
        verbose_name_plural = _("covered groups")
        constraints = [
            models.UniqueConstraint(fields=["negotiation", "group"], name="covered_group_once"),
            models.CheckConstraint(
                condition=Q(proposed_count__isnull=True) | Q(proposed_count__gte=0),
                name="covered_proposed_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(released_count__isnull=True) | Q(released_count__gte=0),
                name="covered_released_non_negative",
            ),
        ]
        indexes = [models.Index(fields=["group", "negotiation"], name="covered_group_negotiation")]

    def __str__(self):
        return str(self.group)


class StatusChange(TimestampedModel):
    """One move of a negotiation's status: append-only, the only way status changes.

    `sequence` numbers the changes of one negotiation 1, 2, 3...; with the unique
    constraint it keeps the history a single chain even if two writers race.
    """

    negotiation = models.ForeignKey(Negotiation, on_delete=models.CASCADE, related_name="status_changes", verbose_name=_("negotiation"))
    sequence = models.PositiveIntegerField(_("sequence"), editable=False)
    from_status = models.CharField(_("from"), max_length=32, choices=NegotiationStatus.choices)
    to_status = models.CharField(_("to"), max_length=32, choices=NegotiationStatus.choices)
    occurred_at = models.DateTimeField(_("occurred at"))
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now, editable=False)
    recorded_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("recorded by (staff)"),
    )
    recorded_by_client = models.ForeignKey(
        "ApiClient", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("recorded by (API client)"),
    )
    note = models.TextField(_("note"), blank=True)
    source = models.CharField(_("source"), max_length=1000, blank=True)

    class Meta:
        ordering = ["negotiation", "sequence"]
        verbose_name = _("status change")
        verbose_name_plural = _("status changes")
        constraints = [
            models.UniqueConstraint(fields=["negotiation", "sequence"], name="status_change_sequence_unique"),
            models.CheckConstraint(condition=~Q(from_status=F("to_status")), name="status_change_moves"),
        ]
        # The admin's list, newest first, with its unique tie-breaker.
        indexes = [models.Index(fields=["-occurred_at", "-id"], name="status_change_recent")]

    def __str__(self):
        return f"{self.get_from_status_display()} → {self.get_to_status_display()}"

    @property
    def recorded_by(self):
        return self.recorded_by_user or self.recorded_by_client


class Event(TimestampedModel):
    """An entry in a negotiation's timeline: a meeting, a proposal, a statement, a release."""

    negotiation = models.ForeignKey(Negotiation, on_delete=models.CASCADE, related_name="events", verbose_name=_("negotiation"))
    kind = models.CharField(_("kind"), max_length=32, choices=EventKind.choices)
    occurred_at = models.DateTimeField(_("occurred at"))
    summary = models.TextField(_("summary"))
    parties = models.ManyToManyField(Party, blank=True, related_name="events", verbose_name=_("parties"))
    source = models.CharField(_("source"), max_length=1000, blank=True)
    recorded_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("recorded by (staff)"),
    )
    recorded_by_client = models.ForeignKey(
        "ApiClient", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("recorded by (API client)"),
    )
    recorded_by_party = recorded_by_party_field(_("The party whose API client recorded it: only that party may change or delete it."))

    class Meta:
        ordering = ["occurred_at", "created_at"]
        verbose_name = _("event")
        verbose_name_plural = _("events")
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=EventKind.values), name="event_kind_valid"),
        ]
        # A negotiation's timeline, in the list's order with its unique tie-breaker.
        # The admin's list of every event, newest first.
        indexes = [
            models.Index(fields=["negotiation", "occurred_at", "created_at", "id"], name="event_timeline_order"),
            models.Index(fields=["-occurred_at", "-created_at", "-id"], name="event_recent"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.occurred_at:%Y-%m-%d}"
