"""Writes of negotiations, their participants, covered groups, commitments and teams, and
their status changes. Their activity is `activity.py`, the timeline's events `events.py`."""
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import audit, changes, policy, signals
from ..choices import NegotiationStatus, ParticipantRole, Visibility, allowed_transitions
from ..models import (
    ApiClient,
    AuditEntry,
    Commitment,
    Handover,
    Transfer,
    CoveredGroup,
    Negotiation,
    Participant,
    Party,
    ReferenceCounter,
    StatusChange,
)
from .activity import ACTIVITY_FIELDS, _activity_rows, _opened_start, _refresh_activity
from .base import IllegalStatusChange, _apply, _client_party, _not_in_future, _recorded_by, _save, _save_new_row, delete_record


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


def _check_opened_on(negotiation):
    """Moving `opened_on` keeps the record true: not after its first status change or
    done handover (those are refused when dated before it)."""
    first_change = negotiation.status_changes.order_by("sequence").values_list("occurred_at", flat=True).first()
    if first_change is not None and _opened_start(negotiation.opened_on) > first_change:
        raise ValidationError(
            {"opened_on": [_("Must not be after its first status change (%(day)s).") % {"day": first_change.date().isoformat()}]}
        )
    first_handover = (
        Handover.objects.filter(negotiation=negotiation, occurred_on__isnull=False)
        .order_by("occurred_on")
        .values_list("occurred_on", flat=True)
        .first()
    )
    if first_handover is not None and negotiation.opened_on > first_handover:
        raise ValidationError(
            {"opened_on": [_("Must not be after its first handover (%(day)s).") % {"day": first_handover.isoformat()}]}
        )


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
    engaged = _parties_engaged(negotiation) - seen
    if engaged:
        names = ", ".join(sorted(str(party) for party in Party.objects.filter(pk__in=engaged)))
        raise ValidationError(
            {"participants": [_("%(parties)s made commitments or handovers in it: they stay among the participants.") % {"parties": names}]}
        )
    negotiation.participants.all().delete()
    rows = [Participant(negotiation=negotiation, party=entry["party"], role=entry["role"]) for entry in participants]
    for row in rows:
        row.full_clean(exclude=["negotiation"], validate_unique=False)
    Participant.objects.bulk_create(rows)
    negotiation.party_ids = sorted(str(entry["party"].pk) for entry in participants)
    Negotiation.objects.filter(pk=negotiation.pk).update(party_ids=negotiation.party_ids)


def _parties_engaged(negotiation):
    """The parties with a commitment or a transfer in this negotiation."""
    engaged = set(Commitment.objects.filter(negotiation=negotiation).values_list("party_id", flat=True))
    for pair in Transfer.objects.filter(negotiation=negotiation).values_list("from_party_id", "to_party_id"):
        engaged.update(pair)
    return engaged


def _replace_commitments(negotiation, commitments, *, actor):
    """What each releasing party undertook; the list replaces the current one. A client
    changes only its own party's commitment; each party takes part in the negotiation."""
    current = {row.party_id: row for row in negotiation.commitments.all()}
    wanted = {}
    for entry in commitments:
        party = entry["party"]
        if party.pk in wanted:
            raise ValidationError({"commitments": [_("%(party)s is listed more than once.") % {"party": party}]})
        wanted[party.pk] = entry
    policy.require_commitments_change(actor, negotiation, current, wanted)
    taking_part = set(negotiation.participants.values_list("party_id", flat=True))
    for party_id, entry in wanted.items():
        if party_id not in taking_part:
            raise ValidationError(
                {"commitments": [_("%(party)s does not take part in this negotiation.") % {"party": entry["party"]}]}
            )
        count, wounded = entry.get("count"), entry.get("seriously_wounded_count")
        if count is not None and wounded is not None and wounded > count:
            raise ValidationError(
                {"commitments": [_("%(party)s: the seriously wounded are part of the count, never more.") % {"party": entry["party"]}]}
            )
    negotiation.commitments.all().delete()
    rows = [
        Commitment(
            negotiation=negotiation,
            party=entry["party"],
            count=entry.get("count"),
            seriously_wounded_count=entry.get("seriously_wounded_count"),
            notes=entry.get("notes") or "",
        )
        for entry in wanted.values()
    ]
    for row in rows:
        row.full_clean(exclude=["negotiation"], validate_unique=False, validate_constraints=False)
    Commitment.objects.bulk_create(rows)


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
        commitments=[
            [str(party), count, wounded]
            for party, count, wounded in negotiation.commitments.order_by("id").values_list(
                "party", "count", "seriously_wounded_count"
            )
        ],
    )


@transaction.atomic
def negotiation_create(*, actor, participants=(), groups=(), teams=None, commitments=(), **fields):
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
    sight_of_groups = changes.parties_seeing_groups({entry["group"].pk for entry in groups})
    _replace_groups(negotiation, groups)
    _check_new_negotiation(actor=actor, participants=participants)
    if commitments:
        _replace_commitments(negotiation, commitments, actor=actor)
    _replace_teams(negotiation, teams)
    _check_still_seen(negotiation, actor=actor, field="participants" if policy.is_client(actor) else "teams")
    changes.record_group_sight(sight_of_groups)
    audit.record(
        actor=actor, action=AuditEntry.Action.CREATE, instance=negotiation, after=_negotiation_snapshot(negotiation)
    )
    signals.negotiation_touched.send(sender=Negotiation, negotiation=negotiation)
    return negotiation


@transaction.atomic
def negotiation_update(*, negotiation, actor, participants=None, groups=None, teams=None, commitments=None, **fields):
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
    opened_on = negotiation.opened_on
    seen_by = changes.reach(negotiation.visibility, negotiation.party_ids)
    sight_of_groups = None
    if groups is not None or participants is not None or "visibility" in fields:
        covered = {row.group_id for row in negotiation.covered_groups.all()} | {entry["group"].pk for entry in groups or ()}
        sight_of_groups = changes.parties_seeing_groups(covered)
    _apply(negotiation, fields, NEGOTIATION_FIELDS)
    _check_negotiation(negotiation, actor=actor)
    if negotiation.opened_on != opened_on:
        _check_opened_on(negotiation)
    _refresh_activity(negotiation)
    _save(negotiation)
    if participants is not None:
        _replace_participants(negotiation, participants)
    if groups is not None:
        _replace_groups(negotiation, groups)
    if commitments is not None:
        _replace_commitments(negotiation, commitments, actor=actor)
    if teams is not None:
        _replace_teams(negotiation, teams)
    _check_still_seen(
        negotiation,
        actor=actor,
        field="participants" if policy.is_client(actor) else "teams" if teams is not None else "visibility",
    )
    changes.record_lost_access(negotiation, seen_by)
    if sight_of_groups:
        changes.record_group_sight(sight_of_groups)
    audit.record(
        actor=actor,
        action=AuditEntry.Action.UPDATE,
        instance=negotiation,
        before=before,
        after=_negotiation_snapshot(negotiation),
    )
    signals.negotiation_touched.send(sender=Negotiation, negotiation=negotiation)
    return negotiation


def negotiation_has_history(negotiation):
    """Whether anything has happened in it: a status change, an event, a handover."""
    return negotiation.status_changes.exists() or negotiation.events.exists() or negotiation.handovers.exists()


@transaction.atomic
def negotiation_delete(*, negotiation, actor):
    """A staff decision (policy: Coordinators), for a negotiation entered by mistake or
    twice: only while nothing has happened in it. One with status changes, events or
    handovers keeps its history as the record (409: close it with a final status). Its
    participants, covered groups, commitments, flags and unsent notices go with it; its
    last state stays in the audit trail, and the change feed tells every party that saw
    it that it is deleted."""
    why = _(
        "%(what)s has a recorded history (status changes, events or handovers), which is kept: "
        "close it with a final status instead of deleting it."
    ) % {"what": negotiation}
    delete_record(negotiation, actor=actor, in_use=negotiation_has_history, why=why, snapshot=_negotiation_snapshot)


@transaction.atomic
def negotiation_change_status(*, negotiation, to_status, actor, occurred_at=None, note="", source=""):
    """Move a negotiation to `to_status`, appending to its history.

    The negotiation row is locked first, so concurrent changes queue and each one's
    `from_status` is the previous one's `to_status`; who may change it is asked once the
    lock is held. `occurred_at` may be back-dated (a change learnt later) but not in the
    future, nor before the previous change. Twelve statements from BEGIN to COMMIT with
    the audit entry, the change log and the webhook outbox when nobody subscribes or watches
    (tests/api/test_write_statements.py).
    """
    negotiation = Negotiation.objects.select_for_update().get(pk=negotiation.pk)
    policy.require(actor, "add", StatusChange, negotiation=negotiation)
    _not_in_future("occurred_at", occurred_at)
    if to_status not in NegotiationStatus.values:
        raise ValidationError({"to_status": [_("“%(value)s” is not a status.") % {"value": to_status}]})
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
    # Read under the lock: the last status change (for the sequence and the order of
    # dates) comes with the activities its rhythm is recomputed from.
    activity = _activity_rows(negotiation)
    previous = max((row for row in activity if row[0] is not None), key=lambda row: row[0], default=None)
    if previous and occurred_at < previous[1]:
        raise ValidationError(
            {
                "occurred_at": [
                    _("Must not be earlier than the previous status change (%(when)s).")
                    % {"when": previous[1].isoformat()}
                ]
            }
        )
    change = StatusChange(
        negotiation=negotiation,
        sequence=(previous[0] + 1) if previous else 1,
        from_status=negotiation.status,
        to_status=to_status,
        occurred_at=occurred_at,
        recorded_at=now,
        note=note or "",
        source=source or "",
        **_recorded_by(actor),
    )
    with changes.together():
        _save_new_row(change)
        audit.record(actor=actor, action=AuditEntry.Action.CREATE, instance=change, after=audit.snapshot(change))
        negotiation.status = to_status
        if to_status == NegotiationStatus.AGREED:
            negotiation.agreed_at = occurred_at
        _refresh_activity(negotiation, activity, also=[occurred_at])
        negotiation.save(update_fields=["status", "agreed_at", *ACTIVITY_FIELDS, "updated_at"])
    signals.status_changed.send(sender=Negotiation, negotiation=negotiation, change=change)
    signals.negotiation_touched.send(sender=Negotiation, negotiation=negotiation)
    return change
