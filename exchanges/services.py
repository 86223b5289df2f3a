"""Every write to the record. Views, the admin, commands and tasks all call these.

Each function is keyword-only, validates, writes in one transaction, and raises
`django.core.exceptions.ValidationError` (a dict of field -> messages) for bad input,
or `IllegalStatusChange` for a move the transition table forbids. An `actor` is a
staff `User`, an `ApiClient`, or None for the system.
"""
import hashlib
import secrets
from datetime import datetime, time, timezone as dt_timezone

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Max, ProtectedError, RestrictedError
from django.utils import timezone
from django.utils.translation import gettext as _

from . import audit, policy, signals
from .choices import NegotiationStatus, ParticipantRole, Visibility, allowed_transitions
from .models.base import EARLIEST
from .models import (
    ApiClient,
    AuditEntry,
    CoveredGroup,
    DetaineeGroup,
    Event,
    Negotiation,
    Participant,
    Party,
    ReferenceCounter,
    ReportedFigure,
    StatusChange,
)

TOKEN_PREFIX = "trk_"


class InUse(Exception):
    """A record that others still refer to cannot be deleted (HTTP 409)."""


class AlreadyRecorded(ValidationError):
    """The same claim (group, metric, value, source, date) is already recorded: a retry
    over a poor connection does not double the record. The API answers 409 naming the
    first; forms show it as an error like any other."""

    def __init__(self, existing):
        self.existing = existing
        super().__init__(_("This claim is already recorded (same group, metric, value, source and date)."))


class IllegalStatusChange(Exception):
    """A status move the transition table does not allow (HTTP 409)."""

    def __init__(self, *, from_status, to_status):
        self.from_status = from_status
        self.to_status = to_status
        self.allowed = allowed_transitions(from_status)
        super().__init__(
            _("A negotiation cannot move from %(from)s to %(to)s.") % {"from": from_status, "to": to_status}
        )


def _recorded_by(actor):
    User = get_user_model()
    return {
        "recorded_by_user": actor if isinstance(actor, User) else None,
        "recorded_by_client": actor if isinstance(actor, ApiClient) else None,
    }


def _client_party(actor):
    return actor.party if isinstance(actor, ApiClient) else None


def _delete(instance, *, actor, refers):
    """Delete a record nothing refers to (`refers`: whether something else still does),
    leaving its last state in the audit trail; 409 (`InUse`) otherwise."""
    if refers:
        raise InUse(_("%(what)s is still referred to by other records; it cannot be deleted.") % {"what": instance})
    audit.record(actor=actor, action=AuditEntry.Action.DELETE, instance=instance, before=audit.snapshot(instance))
    try:
        with transaction.atomic():
            instance.delete()
    except (ProtectedError, RestrictedError):
        raise InUse(_("%(what)s is still referred to by other records; it cannot be deleted.") % {"what": instance}) from None


def _not_in_future(field, value, *, now=None):
    """A moment something happened: not in the future, not before 1900."""
    if value is not None and value > (now or timezone.now()):
        raise ValidationError({field: [_("Must not be in the future.")]})
    if value is not None and value.date() < EARLIEST:
        raise ValidationError({field: [_("Must not be before %(day)s.") % {"day": EARLIEST.isoformat()}]})


def _save(instance, *, update_fields=None):
    """Validate fields and constraints the way the database will, then save."""
    instance.full_clean()
    instance.save(update_fields=update_fields)
    return instance


def _apply(instance, fields, allowed):
    unknown = set(fields) - set(allowed)
    if unknown:
        raise ValidationError({name: [_("This field cannot be changed.")] for name in sorted(unknown)})
    for name, value in fields.items():
        setattr(instance, name, value)


def create_record(instance, *, actor, fields, allowed, check=None):
    """Set `fields` (only names in `allowed`) on a new instance, validate, save and audit it.
    Shared by every create in both apps; `check(instance)` adds rules of its own."""
    _apply(instance, fields, allowed)
    if check is not None:
        check(instance)
    _save(instance)
    audit.record(actor=actor, action=AuditEntry.Action.CREATE, instance=instance, after=audit.snapshot(instance))
    return instance


def update_record(instance, *, actor, fields, allowed, check=None):
    """Lock the row, apply `fields`, validate, save, and audit the before and after.
    Call inside a transaction."""
    instance = type(instance).objects.select_for_update().get(pk=instance.pk)
    before = audit.snapshot(instance)
    _apply(instance, fields, allowed)
    if check is not None:
        check(instance)
    _save(instance)
    audit.record(actor=actor, action=AuditEntry.Action.UPDATE, instance=instance, before=before, after=audit.snapshot(instance))
    return instance


# Parties ---------------------------------------------------------------------------

PARTY_FIELDS = ("name", "short_name", "kind", "country", "aliases")


@transaction.atomic
def party_create(*, actor, **fields):
    policy.require(actor, "add", Party)
    return create_record(Party(), actor=actor, fields=fields, allowed=PARTY_FIELDS)


@transaction.atomic
def party_update(*, party, actor, **fields):
    policy.require(actor, "change", party)
    return update_record(party, actor=actor, fields=fields, allowed=PARTY_FIELDS)


@transaction.atomic
def party_delete(*, party, actor):
    """Only a party nothing refers to (no participation, group, figure, event, client)."""
    policy.require(actor, "delete", party)
    party = Party.objects.select_for_update().get(pk=party.pk)
    _delete(party, actor=actor, refers=party_in_use(party))


def party_in_use(party):
    """Whether anything still names the party (a deletion would lose or break it)."""
    return (
        party.events.exists()
        or party.negotiations.exists()
        or party.groups_held.exists()
        or party.groups_affiliated.exists()
        or party.figures_reported.exists()
        or party.api_clients.exists()
        or DetaineeGroup.objects.filter(recorded_by_party=party).exists()
        or ReportedFigure.objects.filter(recorded_by_party=party).exists()
        or Event.objects.filter(recorded_by_party=party).exists()
    )


# Detainee groups and figures --------------------------------------------------------

GROUP_FIELDS = (
    "name",
    "held_by",
    "affiliated_with",
    "category",
    "detained_since",
    "location",
    "estimated_count",
    "seriously_wounded_count",
    "notes",
)


@transaction.atomic
def detainee_group_create(*, actor, **fields):
    policy.require(actor, "add", DetaineeGroup)
    group = DetaineeGroup(recorded_by_party=_client_party(actor))
    return create_record(group, actor=actor, fields=fields, allowed=GROUP_FIELDS)


@transaction.atomic
def detainee_group_update(*, group, actor, **fields):
    policy.require(actor, "change", group)
    group = update_record(group, actor=actor, fields=fields, allowed=GROUP_FIELDS)
    for negotiation in Negotiation.objects.filter(covered_groups__group=group):
        signals.negotiation_touched.send(sender=Negotiation, negotiation=negotiation)
    return group


@transaction.atomic
def detainee_group_delete(*, group, actor):
    """Only a group no negotiation covers and no figure describes (409 otherwise)."""
    policy.require(actor, "delete", group)
    group = DetaineeGroup.objects.select_for_update().get(pk=group.pk)
    _delete(group, actor=actor, refers=group_in_use(group))


def group_in_use(group):
    """Whether a negotiation covers the group or a figure describes it."""
    return group.coverage.exists() or group.figures.exists()


def _figures_changed(group_id):
    """A group shows its figures (`figures_summary`): its `updated_at`, and so its ETag and
    `updated_since`, move when one of them is recorded, reassessed or withdrawn."""
    DetaineeGroup.objects.filter(pk=group_id).update(updated_at=timezone.now())


def _refuse_repeated_claim(figure):
    same = ReportedFigure.objects.filter(
        group=figure.group_id,
        metric=figure.metric,
        value=figure.value,
        source_party=figure.source_party_id,
        source__iexact=(figure.source or "").strip(),
        reported_on=figure.reported_on,
    ).first()
    if same is not None:
        raise AlreadyRecorded(same)


FIGURE_FIELDS = ("metric", "value", "source_party", "source", "reported_on", "reliability", "notes")
#: Once recorded, a claim's substance is fixed; only the assessment of it may change.
FIGURE_MUTABLE_FIELDS = ("reliability", "notes")


@transaction.atomic
def figure_create(*, group, actor, **fields):
    policy.require(actor, "add", ReportedFigure)
    DetaineeGroup.objects.select_for_update().filter(pk=group.pk).first()  # one claim at a time per group
    figure = ReportedFigure(group=group, recorded_by_party=_client_party(actor))
    figure = create_record(figure, actor=actor, fields=fields, allowed=FIGURE_FIELDS, check=_refuse_repeated_claim)
    _figures_changed(figure.group_id)
    return figure


@transaction.atomic
def figures_import(*, rows, actor):
    """Record many claims at once, all or none (the CSV import); `rows` as figure_create takes them."""
    return [figure_create(actor=actor, **row) for row in rows]


@transaction.atomic
def figure_update(*, figure, actor, **fields):
    policy.require(actor, "change", figure)
    figure = update_record(figure, actor=actor, fields=fields, allowed=FIGURE_MUTABLE_FIELDS)
    _figures_changed(figure.group_id)
    return figure


@transaction.atomic
def figure_delete(*, figure, actor):
    """Withdraw a claim; its last state stays in the audit trail."""
    policy.require(actor, "delete", figure)
    _delete(ReportedFigure.objects.select_for_update().get(pk=figure.pk), actor=actor, refers=False)
    _figures_changed(figure.group_id)


# Negotiations -----------------------------------------------------------------------

NEGOTIATION_FIELDS = (
    "title",
    "summary",
    "priority",
    "visibility",
    "opened_on",
    "next_step",
    "next_step_due",
    "case_officer",
)


def _next_reference(year):
    """Hand out NEG-<year>-<n>, numbered without gaps or duplicates under concurrency."""
    with transaction.atomic():
        if not ReferenceCounter.objects.filter(year=year).update(last_number=F("last_number") + 1):
            try:
                with transaction.atomic():
                    ReferenceCounter.objects.create(year=year, last_number=1)
            except IntegrityError:
                ReferenceCounter.objects.filter(year=year).update(last_number=F("last_number") + 1)
        number = ReferenceCounter.objects.get(year=year).last_number
    return f"NEG-{year}-{number:04d}"


def _opened_start(opened_on):
    return datetime.combine(opened_on, time.min, tzinfo=dt_timezone.utc)


def _refresh_last_activity(negotiation):
    """Recompute last_activity_at from the record itself, so it is always true."""
    latest = [_opened_start(negotiation.opened_on)]
    for model in (StatusChange, Event):
        value = model.objects.filter(negotiation=negotiation).aggregate(latest=Max("occurred_at"))["latest"]
        if value is not None:
            latest.append(value)
    negotiation.last_activity_at = max(latest)


def _check_negotiation(negotiation, *, actor):
    if isinstance(actor, ApiClient) and negotiation.visibility == Visibility.STAFF_ONLY:
        raise ValidationError({"visibility": [_("Only staff may make a negotiation staff-only.")]})
    officer = negotiation.case_officer
    if officer is not None and not (officer.is_active and officer.is_staff):
        raise ValidationError({"case_officer": [_("The case officer must be an active staff login.")]})


def _check_new_negotiation(*, actor, participants):
    """A client records a negotiation only with its own party taking part, not as observer."""
    if isinstance(actor, ApiClient):
        own = [entry for entry in participants if entry["party"].pk == actor.party_id]
        if not own or own[0]["role"] == ParticipantRole.OBSERVER:
            raise ValidationError(
                {"participants": [_("Your own party must take part, in a role other than observer.")]}
            )


def _check_still_seen(negotiation, *, actor, field):
    """After a write, in its transaction: whoever made it, and the case officer, must still
    see the negotiation; a change that would lose it for them is refused (400, nothing
    written), never left for nobody to see."""
    if (policy.is_client(actor) or policy.is_staff(actor)) and not policy.may_see_negotiation(actor, negotiation):
        if policy.is_client(actor):
            message = _("After this change your party could no longer see the negotiation: keep it among the participants.")
        else:
            message = _("After this change you could no longer see the negotiation: keep one of your teams on it.")
        raise ValidationError({field: [message]})
    officer = negotiation.case_officer
    if officer is not None and not policy.may_see_negotiation(officer, negotiation):
        raise ValidationError(
            {"case_officer": [_("%(user)s may not see this negotiation (role or teams).") % {"user": officer.get_username()}]}
        )


def _replace_teams(negotiation, teams):
    negotiation.teams.set(teams)


def _replace_participants(negotiation, participants):
    seen = set()
    for entry in participants:
        party = entry["party"]
        if party.pk in seen:
            raise ValidationError({"participants": [_("%(party)s is listed more than once.") % {"party": party}]})
        seen.add(party.pk)
    negotiation.participants.all().delete()
    rows = [Participant(negotiation=negotiation, party=entry["party"], role=entry["role"]) for entry in participants]
    for row in rows:
        row.full_clean(exclude=["negotiation"], validate_unique=False)
    Participant.objects.bulk_create(rows)
    negotiation.party_ids = sorted(str(entry["party"].pk) for entry in participants)
    Negotiation.objects.filter(pk=negotiation.pk).update(party_ids=negotiation.party_ids)


def _replace_groups(negotiation, groups):
    seen = set()
    for entry in groups:
        group = entry["group"]
        if group.pk in seen:
            raise ValidationError({"groups": [_("%(group)s is listed more than once.") % {"group": group}]})
        seen.add(group.pk)
    negotiation.covered_groups.all().delete()
    rows = [
        CoveredGroup(
            negotiation=negotiation,
            group=entry["group"],
            proposed_count=entry.get("proposed_count"),
            released_count=entry.get("released_count"),
        )
        for entry in groups
    ]
    for row in rows:
        row.full_clean(exclude=["negotiation"], validate_unique=False)
    CoveredGroup.objects.bulk_create(rows)


def _negotiation_snapshot(negotiation):
    return audit.snapshot(
        negotiation,
        teams=sorted(negotiation.teams.values_list("name", flat=True)),
        participants=[
            [str(party), role] for party, role in negotiation.participants.order_by("id").values_list("party", "role")
        ],
        groups=[
            [str(group), proposed, released]
            for group, proposed, released in negotiation.covered_groups.order_by("id").values_list(
                "group", "proposed_count", "released_count"
            )
        ],
    )


@transaction.atomic
def negotiation_create(*, actor, participants=(), groups=(), teams=None, **fields):
    """Open a negotiation in `proposed`. Creating it is not a status change.

    A staff login's staff-only negotiation without teams goes to the login's teams."""
    policy.require(actor, "add", Negotiation)
    negotiation = Negotiation(created_by_party=_client_party(actor))
    _apply(negotiation, fields, NEGOTIATION_FIELDS)
    own_teams = list(actor.tracker_teams.all()) if policy.is_staff(actor) else []
    if teams is None:
        teams = own_teams
    if policy.is_staff(actor) and (
        negotiation.visibility != Visibility.PARTICIPANTS
        or participants
        or {team.pk for team in teams} != {team.pk for team in own_teams}
    ):
        # Who takes part and who sees it are decided by those who manage access, at
        # creation as afterwards (an Editor records it for its own teams).
        policy.require(actor, "manage_access", Negotiation)
    _check_negotiation(negotiation, actor=actor)
    negotiation.reference = _next_reference(negotiation.opened_on.year)
    negotiation.last_activity_at = _opened_start(negotiation.opened_on)
    _save(negotiation)
    _replace_participants(negotiation, participants)
    _replace_groups(negotiation, groups)
    _check_new_negotiation(actor=actor, participants=participants)
    _replace_teams(negotiation, teams)
    _check_still_seen(negotiation, actor=actor, field="participants" if policy.is_client(actor) else "teams")
    audit.record(
        actor=actor, action=AuditEntry.Action.CREATE, instance=negotiation, after=_negotiation_snapshot(negotiation)
    )
    signals.negotiation_touched.send(sender=Negotiation, negotiation=negotiation)
    return negotiation


@transaction.atomic
def negotiation_update(*, negotiation, actor, participants=None, groups=None, teams=None, **fields):
    """Change a negotiation's own fields; `participants`, `groups` and `teams`, when
    given, replace the lists. Who may change what is `policy`'s answer: visibility,
    teams and other parties' participation are staff decisions."""
    negotiation = Negotiation.objects.select_for_update().get(pk=negotiation.pk)
    policy.require(actor, "change", negotiation)
    if "visibility" in fields and fields["visibility"] != negotiation.visibility:
        policy.require(actor, "manage_access", negotiation)
    if teams is not None and {team.pk for team in teams} != set(negotiation.teams.values_list("pk", flat=True)):
        policy.require(actor, "manage_access", negotiation)
    if participants is not None:
        policy.require_participants_change(actor, negotiation, participants)
    before = _negotiation_snapshot(negotiation)
    _apply(negotiation, fields, NEGOTIATION_FIELDS)
    _check_negotiation(negotiation, actor=actor)
    _refresh_last_activity(negotiation)
    _save(negotiation)
    if participants is not None:
        _replace_participants(negotiation, participants)
    if groups is not None:
        _replace_groups(negotiation, groups)
    if teams is not None:
        _replace_teams(negotiation, teams)
    _check_still_seen(
        negotiation,
        actor=actor,
        field="participants" if policy.is_client(actor) else "teams" if teams is not None else "visibility",
    )
    audit.record(
        actor=actor,
        action=AuditEntry.Action.UPDATE,
        instance=negotiation,
        before=before,
        after=_negotiation_snapshot(negotiation),
    )
    signals.negotiation_touched.send(sender=Negotiation, negotiation=negotiation)
    return negotiation


@transaction.atomic
def negotiation_change_status(*, negotiation, to_status, actor, occurred_at=None, note="", source=""):
    """Move a negotiation to `to_status`, appending to its history.

    The negotiation row is locked, so concurrent changes queue and each one's
    `from_status` is the previous one's `to_status`. `occurred_at` may be back-dated
    (a change learnt later) but not in the future, nor before the previous change.
    """
    policy.require(actor, "add", StatusChange, negotiation=negotiation)
    _not_in_future("occurred_at", occurred_at)
    if to_status not in NegotiationStatus.values:
        raise ValidationError({"to_status": [_("“%(value)s” is not a status.") % {"value": to_status}]})
    negotiation = Negotiation.objects.select_for_update().get(pk=negotiation.pk)
    # "Now" is read once the lock is held, so a writer that waited is not dated before
    # the change that went ahead of it.
    now = timezone.now()
    occurred_at = occurred_at or now
    if to_status not in allowed_transitions(negotiation.status):
        raise IllegalStatusChange(from_status=negotiation.status, to_status=to_status)
    if occurred_at < _opened_start(negotiation.opened_on):
        raise ValidationError(
            {"occurred_at": [_("Must not be before the negotiation opened (%(day)s).") % {"day": negotiation.opened_on.isoformat()}]}
        )
    previous = negotiation.status_changes.order_by("-sequence").values("sequence", "occurred_at").first()
    if previous and occurred_at < previous["occurred_at"]:
        raise ValidationError(
            {
                "occurred_at": [
                    _("Must not be earlier than the previous status change (%(when)s).")
                    % {"when": previous["occurred_at"].isoformat()}
                ]
            }
        )
    change = StatusChange(
        negotiation=negotiation,
        sequence=(previous["sequence"] + 1) if previous else 1,
        from_status=negotiation.status,
        to_status=to_status,
        occurred_at=occurred_at,
        recorded_at=now,
        note=note or "",
        source=source or "",
        **_recorded_by(actor),
    )
    _save(change)
    audit.record(actor=actor, action=AuditEntry.Action.CREATE, instance=change, after=audit.snapshot(change))
    negotiation.status = to_status
    negotiation.last_activity_at = max(negotiation.last_activity_at, occurred_at)
    negotiation.save(update_fields=["status", "last_activity_at", "updated_at"])
    signals.status_changed.send(sender=Negotiation, negotiation=negotiation, change=change)
    signals.negotiation_touched.send(sender=Negotiation, negotiation=negotiation)
    return change


# Events -----------------------------------------------------------------------------

EVENT_FIELDS = ("kind", "occurred_at", "summary", "source")


def _touch_after_event(negotiation):
    negotiation = Negotiation.objects.select_for_update().get(pk=negotiation.pk)
    _refresh_last_activity(negotiation)
    negotiation.save(update_fields=["last_activity_at", "updated_at"])
    signals.negotiation_touched.send(sender=Negotiation, negotiation=negotiation)


@transaction.atomic
def event_create(*, negotiation, actor, parties=(), **fields):
    """Add an event to the timeline; it counts as activity at its real-world time."""
    policy.require(actor, "add", Event, negotiation=negotiation)
    event = Event(negotiation=negotiation, recorded_by_party=_client_party(actor), **_recorded_by(actor))
    _apply(event, fields, EVENT_FIELDS)
    _not_in_future("occurred_at", event.occurred_at)
    _save(event)
    event.parties.set(parties)
    audit.record(actor=actor, action=AuditEntry.Action.CREATE, instance=event, after=_event_snapshot(event))
    _touch_after_event(negotiation)
    return event


def _event_snapshot(event):
    return audit.snapshot(event, parties=sorted(str(pk) for pk in event.parties.values_list("pk", flat=True)))


@transaction.atomic
def event_update(*, event, actor, parties=None, **fields):
    event = Event.objects.select_for_update().get(pk=event.pk)
    policy.require(actor, "change", event)
    before = _event_snapshot(event)
    _apply(event, fields, EVENT_FIELDS)
    _not_in_future("occurred_at", event.occurred_at)
    _save(event)
    if parties is not None:
        event.parties.set(parties)
    audit.record(actor=actor, action=AuditEntry.Action.UPDATE, instance=event, before=before, after=_event_snapshot(event))
    _touch_after_event(event.negotiation)
    return event


@transaction.atomic
def event_delete(*, event, actor):
    """Remove an event from the timeline; it stays in the audit trail."""
    policy.require(actor, "delete", event)
    negotiation = event.negotiation
    audit.record(actor=actor, action=AuditEntry.Action.DELETE, instance=event, before=_event_snapshot(event))
    event.delete()
    _touch_after_event(negotiation)


# API clients ------------------------------------------------------------------------


def hash_token(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@transaction.atomic
def api_client_create(*, name, party, read_only=False, expires_at=None, actor=None):
    """Create a client and return `(client, token)`. The token is not stored and cannot be shown again."""
    policy.require(actor, "add", ApiClient)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    client = ApiClient(
        name=name,
        party=party,
        read_only=read_only,
        expires_at=expires_at,
        token_prefix=token[: len(TOKEN_PREFIX) + 6],
        token_hash=hash_token(token),
    )
    _save(client)
    audit.record(actor=actor, action=AuditEntry.Action.CREATE, instance=client, after=audit.snapshot(client))
    return client, token


CLIENT_FIELDS = ("name", "read_only", "expires_at")


@transaction.atomic
def api_client_update(*, client, actor, **fields):
    policy.require(actor, "change", client)
    return update_record(client, actor=actor, fields=fields, allowed=CLIENT_FIELDS)


@transaction.atomic
def api_client_revoke(*, client, actor=None):
    policy.require(actor, "change", client)
    client = ApiClient.objects.select_for_update().get(pk=client.pk)
    if client.revoked_at is None:
        before = audit.snapshot(client)
        client.revoked_at = timezone.now()
        client.save(update_fields=["revoked_at", "updated_at"])
        audit.record(actor=actor, action=AuditEntry.Action.UPDATE, instance=client, before=before, after=audit.snapshot(client))
    return client
