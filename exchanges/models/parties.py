"""Who negotiates and over whom: parties, detainee groups, the figures claimed about them,
and the staff teams."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from ..choices import (
    FigureMetric,
    GroupCategory,
    PartyKind,
    Reliability,
)
from .base import TimestampedModel, refuse_future_date


MAX_ALIASES, MAX_ALIAS_LENGTH = 50, 200


class Party(TimestampedModel):
    """A negotiating party: a government, a de-facto authority, a mediator, the UN, the ICRC."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    short_name = models.CharField(_("short name"), max_length=50, blank=True)
    kind = models.CharField(_("kind"), max_length=32, choices=PartyKind.choices)
    country = models.CharField(
        _("country"), max_length=2, null=True, blank=True, help_text=_("ISO 3166-1 alpha-2 code.")
    )
    aliases = models.JSONField(
        _("aliases"),
        default=list,
        blank=True,
        help_text=_("Other names, abbreviations and spellings in any script (“UAE”, “Emirates”, “ОАЕ”); search finds them."),
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

    def clean(self):
        """Aliases: a list of distinct names (case aside), each 1-200 characters, at most 50."""
        aliases = self.aliases if self.aliases is not None else []
        if not isinstance(aliases, list) or not all(isinstance(alias, str) for alias in aliases):
            raise ValidationError({"aliases": [_("A list of names.")]})
        kept = {}
        for alias in (alias.strip() for alias in aliases):
            if not alias or len(alias) > MAX_ALIAS_LENGTH:
                raise ValidationError({"aliases": [_("Each alias is 1 to %(n)d characters.") % {"n": MAX_ALIAS_LENGTH}]})
            kept.setdefault(alias.casefold(), alias)
        if len(kept) > MAX_ALIASES:
            raise ValidationError({"aliases": [_("At most %(n)d aliases.") % {"n": MAX_ALIASES}]})
        self.aliases = list(kept.values())


def recorded_by_party_field(help_text):
    """The party whose API client recorded a row: only that party's clients may change it
    (`exchanges.policy`); staff rows have none. Protected: a party still named here is not
    deleted."""
    return models.ForeignKey(
        Party,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by party"),
        help_text=help_text,
    )


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
    recorded_by_party = recorded_by_party_field(_("The party whose API client recorded it: only that party may change it."))

    class Meta:
        ordering = ["name"]
        verbose_name = _("detainee group")
        verbose_name_plural = _("detainee groups")
        # The API list's order (newest first) with its unique tie-breaker.
        # The admin's list (by name, the changelist's tie-breaker after it).
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="group_list_order"),
            models.Index(fields=["name", "-id"], name="group_name_order"),
        ]
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
        refuse_future_date(errors, "detained_since", self.detained_since)
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
    recorded_by_party = recorded_by_party_field(_("The party whose API client recorded it: only that party may change or withdraw it."))

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
        indexes = [
            models.Index(fields=["group", "metric"], name="figure_group_metric"),
            # A group's figures in the list's order with its unique tie-breaker.
            models.Index(fields=["group", "reported_on", "created_at", "id"], name="figure_list_order"),
            # The admin's list of every figure, newest first.
            models.Index(fields=["-reported_on", "-created_at", "-id"], name="figure_recent"),
        ]

    def __str__(self):
        return f"{self.get_metric_display()}: {self.value} ({self.source or self.source_party or '?'})"

    def clean(self):
        errors = {}
        refuse_future_date(errors, "reported_on", self.reported_on)
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
