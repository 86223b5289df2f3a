"""The record: who negotiates, over whom, what was claimed, and what happened when.

Writes go through `exchanges.services`; reads with visibility rules through
`exchanges.selectors`. The database enforces what it can (see each Meta).
"""
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .choices import (
    OPEN,
    EventKind,
    FigureMetric,
    GroupCategory,
    NegotiationStatus,
    ParticipantRole,
    PartyKind,
    Priority,
    Reliability,
    Visibility,
)

MAX_COUNT = 2_147_483_647
_OPEN_STATUSES = sorted(str(status) for status in OPEN)


def _refuse_future_date(errors, field, value):
    if value is not None and value > timezone.localdate():
        errors[field] = [_("Must not be in the future.")]


class TimestampedModel(models.Model):
    """Every object carries a UUID and its creation and last-update times (API.md)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    class Meta:
        abstract = True


class Party(TimestampedModel):
    """A negotiating party: a government, a de-facto authority, a mediator, the UN, the ICRC."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    short_name = models.CharField(_("short name"), max_length=50, blank=True)
    kind = models.CharField(_("kind"), max_length=32, choices=PartyKind.choices)
    country = models.CharField(
        _("country"), max_length=2, null=True, blank=True, help_text=_("ISO 3166-1 alpha-2 code.")
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("party")
        verbose_name_plural = _("parties")
        constraints = [
            models.UniqueConstraint(
                fields=["short_name"], condition=~Q(short_name=""), name="party_short_name_unique"
            ),
            models.CheckConstraint(
                condition=Q(country__isnull=True) | Q(country__regex=r"^[A-Z]{2}$"),
                name="party_country_alpha2",
            ),
            models.CheckConstraint(condition=Q(kind__in=PartyKind.values), name="party_kind_valid"),
        ]

    def __str__(self):
        return f"{self.name} ({self.short_name})" if self.short_name else self.name


class DetaineeGroup(TimestampedModel):
    """People held by one party, affiliated with another, counted as best anyone can.

    `estimated_count` and `seriously_wounded_count` are the working figures staff rely
    on; what each side claimed is kept separately as `ReportedFigure` rows.
    """

    name = models.CharField(_("name"), max_length=200)
    held_by = models.ForeignKey(
        Party, on_delete=models.PROTECT, related_name="groups_held", verbose_name=_("held by")
    )
    affiliated_with = models.ForeignKey(
        Party, on_delete=models.PROTECT, related_name="groups_affiliated", verbose_name=_("affiliated with")
    )
    category = models.CharField(_("category"), max_length=32, choices=GroupCategory.choices)
    detained_since = models.DateField(_("detained since"), null=True, blank=True)
    location = models.CharField(_("location"), max_length=500, blank=True)
    estimated_count = models.PositiveIntegerField(_("estimated count"), null=True, blank=True)
    seriously_wounded_count = models.PositiveIntegerField(_("seriously wounded"), null=True, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    recorded_by_party = models.ForeignKey(
        Party,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by party"),
        help_text=_("The party whose API client recorded it: only that party may change it."),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("detainee group")
        verbose_name_plural = _("detainee groups")
        constraints = [
            models.CheckConstraint(
                condition=Q(estimated_count__isnull=True) | Q(estimated_count__gte=0),
                name="group_estimate_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(seriously_wounded_count__isnull=True) | Q(seriously_wounded_count__gte=0),
                name="group_wounded_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(estimated_count__isnull=True)
                | Q(seriously_wounded_count__isnull=True)
                | Q(seriously_wounded_count__lte=F("estimated_count")),
                name="group_wounded_within_estimate",
            ),
            models.CheckConstraint(condition=Q(category__in=GroupCategory.values), name="group_category_valid"),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        errors = {}
        _refuse_future_date(errors, "detained_since", self.detained_since)
        if (
            self.estimated_count is not None
            and self.seriously_wounded_count is not None
            and self.seriously_wounded_count > self.estimated_count
        ):
            errors["seriously_wounded_count"] = [
                _("Must not be above the estimated count (%(n)s).") % {"n": self.estimated_count}
            ]
        if errors:
            raise ValidationError(errors)


class ReportedFigure(TimestampedModel):
    """A figure someone reported about a group: a claim with its source, never a fact.

    Claims are never merged or overwritten; a new claim is a new row, so disputes stay
    visible side by side (at Azovstal: 1,730 claimed by one side, 265 by the other).
    """

    group = models.ForeignKey(
        DetaineeGroup, on_delete=models.CASCADE, related_name="figures", verbose_name=_("detainee group")
    )
    metric = models.CharField(_("metric"), max_length=32, choices=FigureMetric.choices)
    value = models.PositiveIntegerField(_("value"))
    source_party = models.ForeignKey(
        Party,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="figures_reported",
        verbose_name=_("source party"),
    )
    source = models.CharField(_("source"), max_length=1000, blank=True, help_text=_("Who said it, and where."))
    reported_on = models.DateField(_("reported on"))
    reliability = models.CharField(
        _("reliability"), max_length=16, choices=Reliability.choices, default=Reliability.UNVERIFIED
    )
    notes = models.TextField(_("notes"), blank=True)
    recorded_by_party = models.ForeignKey(
        Party,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by party"),
        help_text=_("The party whose API client recorded it: only that party may change or withdraw it."),
    )

    class Meta:
        ordering = ["reported_on", "created_at"]
        verbose_name = _("reported figure")
        verbose_name_plural = _("reported figures")
        constraints = [
            models.CheckConstraint(condition=Q(value__gte=0), name="figure_value_non_negative"),
            models.CheckConstraint(condition=Q(metric__in=FigureMetric.values), name="figure_metric_valid"),
            models.CheckConstraint(
                condition=Q(reliability__in=Reliability.values), name="figure_reliability_valid"
            ),
        ]
        indexes = [models.Index(fields=["group", "metric"], name="figure_group_metric")]

    def __str__(self):
        return f"{self.get_metric_display()}: {self.value} ({self.source or self.source_party or '?'})"

    def clean(self):
        errors = {}
        _refuse_future_date(errors, "reported_on", self.reported_on)
        if errors:
            raise ValidationError(errors)


class Team(TimestampedModel):
    """A group of staff who work on negotiations together.

    A `staff_only` negotiation is seen only by the staff of its teams (and by holders of
    `exchanges.see_all_staff_only`); teams are how need-to-know is granted to people.
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="tracker_teams", verbose_name=_("members")
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def __str__(self):
        return self.name


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
            # `?stalled=true` lists, newest first.
            models.Index(fields=["-created_at", "-id"], condition=Q(stalled=True), name="negotiation_stalled_recent"),
            # The stall scan reads open negotiations by silence and by due date.
            models.Index(fields=["last_activity_at"], condition=Q(status__in=_OPEN_STATUSES), name="negotiation_open_silence"),
            models.Index(
                fields=["next_step_due"],
                condition=Q(status__in=_OPEN_STATUSES, next_step_due__isnull=False),
                name="negotiation_open_due",
            ),
        ]

    def __str__(self):
        return f"{self.reference} {self.title}"

    def clean(self):
        errors = {}
        _refuse_future_date(errors, "opened_on", self.opened_on)
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
    recorded_by_party = models.ForeignKey(
        Party,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by party"),
        help_text=_("The party whose API client recorded it: only that party may change or delete it."),
    )

    class Meta:
        ordering = ["occurred_at", "created_at"]
        verbose_name = _("event")
        verbose_name_plural = _("events")
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=EventKind.values), name="event_kind_valid"),
        ]
        indexes = [models.Index(fields=["negotiation", "occurred_at"], name="event_negotiation_time")]

    def __str__(self):
        return f"{self.get_kind_display()} {self.occurred_at:%Y-%m-%d}"


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


class AuditEntry(AppendOnlyModel):
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
        indexes = [models.Index(fields=["model", "object_id"], name="audit_object")]

    def __str__(self):
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.actor_label} {self.get_action_display()} {self.object_repr}"



class AccessLogEntry(AppendOnlyModel):
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
        indexes = [models.Index(fields=["negotiation", "-occurred_at"], name="access_log_negotiation")]

    def __str__(self):
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.user_label} {self.negotiation_repr}"



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
